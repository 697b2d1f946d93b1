package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.InstanceOfAssertFactories.type;
import static org.awaitility.Awaitility.await;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.HttpResponseFor;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.errors.OpenAIServiceException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.embeddings.CreateEmbeddingResponse;
import com.openai.models.embeddings.EmbeddingCreateParams;
import com.openai.models.models.Model;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestGateway;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The gateway driven by the official OpenAI Java SDK (SPEC §1: clients keep their SDKs and change
 * only the base URL; §4: errors have OpenAI's shape so SDKs raise their usual exceptions).
 */
class OpenAiSdkTest {
  private static final String CLIENT_MODEL = "llama-3-8b";
  private static final String BACKEND_MODEL = "llama-3-8b-instruct";

  private static final String YAML = """
      backends:
        - url: "${SIM0}"
          name: a
          models: ["llama-3-8b-instruct", "text-embedder"]
        - url: "${SIM1}"
          name: broken
          models: ["broken-model"]
      routing:
        model_mapping: {"llama-3-8b": "llama-3-8b-instruct"}
      health_check: {enabled: false}
      """;

  private static TestGateway gw;
  private static OpenAIClient client;

  @BeforeAll
  static void start() {
    SimulatorOptions base = SimulatorOptions.defaults()
        .withTtft(Duration.ofMillis(20)).withItl(Duration.ofMillis(5)).withTokens(8);
    gw = TestGateway.start(YAML,
        base.withName("a").withModels(BACKEND_MODEL, "text-embedder"),
        base.withName("broken").withModels("broken-model").withFail(1.0, 400));
    // The gateway asks each backend for its models as it starts: that request is let happen before
    // the tests count the requests a backend saw.
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.sims.stream()
        .allMatch(s -> s.requests().stream().anyMatch(r -> r.path().equals("/v1/models"))));
    client = OpenAIOkHttpClient.builder()
        .baseUrl(gw.url() + "/v1")
        .apiKey("test")
        .maxRetries(0)
        .timeout(Duration.ofSeconds(10))
        .build();
  }

  @AfterAll
  static void stop() {
    if (client != null) {
      client.close();
    }
    if (gw != null) {
      gw.close();
    }
  }

  @BeforeEach
  void resetSims() {
    gw.sims.forEach(Simulator::reset);
  }

  private static ChatCompletionCreateParams chat() {
    return ChatCompletionCreateParams.builder()
        .model(CLIENT_MODEL)
        .addUserMessage("Say hello")
        .build();
  }

  private static RequestRecord onlyRequest(Simulator sim) {
    List<RequestRecord> seen = sim.requests();
    assertThat(seen).as("requests the backend saw").hasSize(1);
    return seen.get(0);
  }

  @Test
  void chatCompletion() {
    HttpResponseFor<ChatCompletion> raw = client.chat().completions().withRawResponse().create(chat());
    ChatCompletion completion = raw.parse();

    assertThat(raw.statusCode()).isEqualTo(200);
    assertThat(completion.model()).isEqualTo(BACKEND_MODEL);
    assertThat(completion.choices()).hasSize(1);
    assertThat(completion.choices().get(0).message().content()).hasValueSatisfying(c -> assertThat(c).isNotBlank());
    assertThat(completion.choices().get(0).finishReason()).isEqualTo(ChatCompletion.Choice.FinishReason.STOP);
    assertThat(completion.usage()).hasValueSatisfying(u -> {
      assertThat(u.promptTokens()).isPositive();
      assertThat(u.completionTokens()).isEqualTo(8);
      assertThat(u.totalTokens()).isEqualTo(u.promptTokens() + u.completionTokens());
    });
    assertThat(raw.headers().values("x-llmproxy-backend")).containsExactly("a");
    assertThat(raw.headers().values("x-llmproxy-attempts")).containsExactly("1");

    RequestRecord seen = onlyRequest(gw.sim(0));
    assertThat(seen.path()).isEqualTo("/v1/chat/completions");
    assertThat(seen.model()).as("the mapped model goes upstream").isEqualTo(BACKEND_MODEL);
    assertThat(seen.header("authorization")).as("the client's key is never forwarded").isNull();
    assertThat(seen.bodyText()).doesNotContain("\"test\"");
    assertThat(seen.header("x-request-id")).isNotBlank();
    assertThat(raw.headers().values("x-request-id")).containsExactly(seen.header("x-request-id"));
    assertThat(gw.sim(1).requests()).isEmpty();
  }

  @Test
  void chatStreamingHasTheSameContentAsNonStreaming() {
    String whole = client.chat().completions().create(chat()).choices().get(0).message().content().orElseThrow();
    gw.sim(0).reset();

    List<ChatCompletionChunk> chunks;
    try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(chat())) {
      chunks = stream.stream().toList();
    }

    assertThat(chunks).hasSizeGreaterThan(2);
    assertThat(chunks).allSatisfy(c -> assertThat(c.model()).isEqualTo(BACKEND_MODEL));
    ChatCompletionChunk last = chunks.get(chunks.size() - 1);
    assertThat(last.choices()).hasSize(1);
    assertThat(last.choices().get(0).finishReason()).hasValue(ChatCompletionChunk.Choice.FinishReason.STOP);
    assertThat(chunks.subList(0, chunks.size() - 1))
        .allSatisfy(c -> assertThat(c.choices().get(0).finishReason()).isEmpty());
    String streamed = chunks.stream()
        .flatMap(c -> c.choices().stream())
        .map(ch -> ch.delta().content().orElse(""))
        .collect(Collectors.joining());
    assertThat(streamed).isEqualTo(whole).isNotBlank();

    RequestRecord seen = onlyRequest(gw.sim(0));
    assertThat(seen.stream()).isTrue();
    assertThat(seen.model()).isEqualTo(BACKEND_MODEL);
    assertThat(seen.header("authorization")).isNull();
    assertThat(seen.header("x-request-id")).isNotBlank();
    // the SDK stops reading at [DONE], which the backend writes just before it ends the response
    await().atMost(Duration.ofSeconds(5)).until(() -> onlyRequest(gw.sim(0)).completed());
    assertThat(onlyRequest(gw.sim(0)).clientDisconnected()).isFalse();
  }

  @Test
  void chatStreamingWithUsage() {
    ChatCompletionCreateParams params = chat().toBuilder()
        .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())
        .build();

    List<ChatCompletionChunk> chunks;
    try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
      chunks = stream.stream().toList();
    }

    ChatCompletionChunk last = chunks.get(chunks.size() - 1);
    assertThat(last.choices()).isEmpty();
    assertThat(last.usage()).hasValueSatisfying(u -> {
      assertThat(u.completionTokens()).isEqualTo(8);
      assertThat(u.promptTokens()).isPositive();
    });
    assertThat(chunks.subList(0, chunks.size() - 1)).allSatisfy(c -> assertThat(c.usage()).isEmpty());
    assertThat(onlyRequest(gw.sim(0)).bodyText()).contains("\"include_usage\":true");
  }

  @Test
  void embeddings() {
    CreateEmbeddingResponse resp = client.embeddings().create(EmbeddingCreateParams.builder()
        .model("text-embedder")
        .input("The food was delicious")
        .build());

    assertThat(resp.model()).isEqualTo("text-embedder");
    assertThat(resp.data()).hasSize(1);
    assertThat(resp.data().get(0).embedding()).hasSize(8);
    assertThat(resp.usage().promptTokens()).isPositive();

    RequestRecord seen = onlyRequest(gw.sim(0));
    assertThat(seen.path()).isEqualTo("/v1/embeddings");
    assertThat(seen.model()).isEqualTo("text-embedder");
    assertThat(seen.header("authorization")).isNull();
    assertThat(seen.header("x-request-id")).isNotBlank();
  }

  @Test
  void modelsListHasTheMappedAndTheLiteralNames() {
    List<String> ids = client.models().list().data().stream().map(Model::id).toList();

    assertThat(ids).contains(CLIENT_MODEL, BACKEND_MODEL, "text-embedder", "broken-model");
    assertThat(ids).doesNotHaveDuplicates();
  }

  @Test
  void unknownModelIsTheSdksNotFoundException() {
    ChatCompletionCreateParams params = ChatCompletionCreateParams.builder()
        .model("no-such-model").addUserMessage("hi").build();

    assertThatThrownBy(() -> client.chat().completions().create(params))
        .isInstanceOf(NotFoundException.class)
        .asInstanceOf(type(OpenAIServiceException.class))
        .satisfies(e -> {
          assertThat(e.statusCode()).isEqualTo(404);
          assertThat(e.code()).hasValue("model_not_found");
          assertThat(e.type()).hasValue("invalid_request_error");
          assertThat(e.param()).hasValue("model");
        });
    assertThat(gw.sim(0).requests()).isEmpty();
    assertThat(gw.sim(1).requests()).isEmpty();
  }

  @Test
  void backendBadRequestIsTheSdksBadRequestException() {
    ChatCompletionCreateParams params = ChatCompletionCreateParams.builder()
        .model("broken-model").addUserMessage("hi").build();

    assertThatThrownBy(() -> client.chat().completions().create(params))
        .isInstanceOf(BadRequestException.class)
        .asInstanceOf(type(OpenAIServiceException.class))
        .satisfies(e -> {
          assertThat(e.statusCode()).isEqualTo(400);
          assertThat(e.type()).hasValue("invalid_request_error");
          assertThat(e.getMessage()).contains("Simulated failure with status 400 from broken");
          assertThat(e.headers().values("x-llmproxy-backend")).containsExactly("broken");
        });
    // a backend's own 4xx is passed through, not retried
    RequestRecord seen = onlyRequest(gw.sim(1));
    assertThat(seen.status()).isEqualTo(400);
    assertThat(seen.header("authorization")).isNull();
  }
}
