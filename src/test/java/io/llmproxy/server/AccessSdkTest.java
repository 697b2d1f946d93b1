package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.InstanceOfAssertFactories.type;
import static org.awaitility.Awaitility.await;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.OpenAIServiceException;
import com.openai.errors.PermissionDeniedException;
import com.openai.errors.RateLimitException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.ManualTimeMeter;
import io.llmproxy.testing.TestGateway;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 7, acceptance 6: the official OpenAI Java SDK sees the gateway's access errors as its own
 * exception types (401 {@link UnauthorizedException}, 403 {@link PermissionDeniedException}, 429
 * {@link RateLimitException}, each with OpenAI's code), and streams with a valid key whether or not
 * it asks for usage.
 */
class AccessSdkTest {
  private static final String GOOD = "sk-llmproxy-sdk-good";
  private static final String DISABLED = "sk-llmproxy-sdk-disabled";
  private static final String LLAMA_ONLY = "sk-llmproxy-sdk-llama";
  private static final String ONE_A_MINUTE = "sk-llmproxy-sdk-slow";
  private static final String TINY_QUOTA = "sk-llmproxy-sdk-tiny";

  @TempDir
  static Path dataDir;

  private static final ManualTimeMeter METER = new ManualTimeMeter();
  private static TestGateway gw;
  private static final List<OpenAIClient> clients = new ArrayList<>();

  @BeforeAll
  static void start() {
    gw = TestGateway.start("""
        backends:
          - url: "${SIM0}"
            models: ["llama-3-8b-instruct", "other"]
        routing:
          model_mapping: {"llama-3-8b": "llama-3-8b-instruct"}
        rate_limit: {enabled: true}
        auth: {enabled: true}
        api_keys:
          - {key: "%s", name: good}
          - {key: "%s", name: disabled, status: disabled}
          - {key: "%s", name: llama, allowed_models: ["llama-3-8b"]}
          - {key: "%s", name: slow, rate_limit: {requests_per_minute: 1}}
          - {key: "%s", name: tiny, total_quota: 1}
        data_dir: "${DATA}"
        health_check: {enabled: false}
        """.formatted(GOOD, DISABLED, LLAMA_ONLY, ONE_A_MINUTE, TINY_QUOTA), Map.of("DATA", dataDir.toString()),
        Clock.systemUTC(), METER, SimulatorOptions.defaults().withModels("llama-3-8b-instruct")
            .withTtft(Duration.ofMillis(5)).withItl(Duration.ofMillis(1)).withTokens(8));
  }

  @AfterAll
  static void stop() {
    clients.forEach(OpenAIClient::close);
    if (gw != null) {
      gw.close();
    }
  }

  private static OpenAIClient client(String key) {
    OpenAIClient c = OpenAIOkHttpClient.builder()
        .baseUrl(gw.url() + "/v1")
        .apiKey(key)
        .maxRetries(0) // the SDK would retry a 429 on its own
        .timeout(Duration.ofSeconds(10))
        .build();
    clients.add(c);
    return c;
  }

  private static ChatCompletionCreateParams chat(String model) {
    return ChatCompletionCreateParams.builder().model(model).addUserMessage("Say hello").build();
  }

  private static void assertCode(Throwable t, int status, String code) {
    assertThat(t).asInstanceOf(type(OpenAIServiceException.class)).satisfies(e -> {
      assertThat(e.statusCode()).isEqualTo(status);
      assertThat(e.code()).hasValue(code);
      assertThat(e.getMessage()).isNotBlank();
    });
  }

  @Test
  void unknownKeyIsUnauthorizedException() {
    assertThatThrownBy(() -> client("sk-llmproxy-nobody").chat().completions().create(chat("llama-3-8b")))
        .isInstanceOf(UnauthorizedException.class)
        .satisfies(t -> assertCode(t, 401, "invalid_api_key"));
    assertThatThrownBy(() -> client("sk-llmproxy-nobody").models().list())
        .isInstanceOf(UnauthorizedException.class);
  }

  @Test
  void disabledKeyAndForbiddenModelArePermissionDeniedException() {
    assertThatThrownBy(() -> client(DISABLED).chat().completions().create(chat("llama-3-8b")))
        .isInstanceOf(PermissionDeniedException.class)
        .satisfies(t -> assertCode(t, 403, "key_disabled"));
    assertThatThrownBy(() -> client(LLAMA_ONLY).chat().completions().create(chat("other")))
        .isInstanceOf(PermissionDeniedException.class)
        .satisfies(t -> assertCode(t, 403, "model_not_allowed"))
        .asInstanceOf(type(OpenAIServiceException.class))
        .satisfies(e -> assertThat(e.param()).hasValue("model"));
    // streaming too: the error comes before any event
    assertThatThrownBy(() -> {
      try (StreamResponse<ChatCompletionChunk> s = client(DISABLED).chat().completions().createStreaming(chat("llama-3-8b"))) {
        s.stream().toList();
      }
    }).isInstanceOf(PermissionDeniedException.class);
  }

  @Test
  void rateLimitAndQuotaAreRateLimitException() {
    OpenAIClient slow = client(ONE_A_MINUTE);
    ChatCompletion ok = slow.chat().completions().create(chat("llama-3-8b"));
    assertThat(ok.choices()).hasSize(1);
    assertThatThrownBy(() -> slow.chat().completions().create(chat("llama-3-8b")))
        .isInstanceOf(RateLimitException.class)
        .satisfies(t -> assertCode(t, 429, "rate_limit_exceeded"))
        .asInstanceOf(type(OpenAIServiceException.class))
        .satisfies(e -> {
          assertThat(e.headers().values("retry-after")).containsExactly("60");
          assertThat(e.headers().values("x-ratelimit-limit-requests")).containsExactly("1");
        });
    METER.advance(Duration.ofMinutes(1));
    assertThat(slow.chat().completions().create(chat("llama-3-8b")).choices()).hasSize(1);

    OpenAIClient tiny = client(TINY_QUOTA);
    tiny.chat().completions().create(chat("llama-3-8b"));
    await().atMost(Duration.ofSeconds(5)).until(() ->
        gw.gateway.access().quotas().used(gw.gateway.access().keys().find(TINY_QUOTA)) > 1);
    assertThatThrownBy(() -> tiny.chat().completions().create(chat("llama-3-8b")))
        .isInstanceOf(RateLimitException.class)
        .satisfies(t -> assertCode(t, 429, "insufficient_quota"))
        .asInstanceOf(type(OpenAIServiceException.class))
        .satisfies(e -> assertThat(e.headers().values("retry-after")).hasSize(1));
  }

  @Test
  void streamsWithAndWithoutUsage() {
    OpenAIClient good = client(GOOD);
    int before = gw.posts(0).size();
    List<ChatCompletionChunk> plain;
    try (StreamResponse<ChatCompletionChunk> s = good.chat().completions().createStreaming(chat("llama-3-8b"))) {
      plain = s.stream().toList();
    }
    assertThat(plain).allSatisfy(c -> {
      assertThat(c.usage()).isEmpty();
      assertThat(c.choices()).hasSize(1);
    });
    assertThat(plain.get(plain.size() - 1).choices().get(0).finishReason())
        .hasValue(ChatCompletionChunk.Choice.FinishReason.STOP);
    String text = plain.stream().map(c -> c.choices().get(0).delta().content().orElse("")).collect(Collectors.joining());
    assertThat(text).isNotBlank();

    ChatCompletionCreateParams withUsage = chat("llama-3-8b").toBuilder()
        .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
    List<ChatCompletionChunk> counted;
    try (StreamResponse<ChatCompletionChunk> s = good.chat().completions().createStreaming(withUsage)) {
      counted = s.stream().toList();
    }
    ChatCompletionChunk last = counted.get(counted.size() - 1);
    assertThat(last.choices()).isEmpty();
    assertThat(last.usage()).hasValueSatisfying(u -> assertThat(u.completionTokens()).isEqualTo(8));
    assertThat(counted.subList(0, counted.size() - 1)).allSatisfy(c -> assertThat(c.usage()).isEmpty());
    assertThat(counted.stream().flatMap(c -> c.choices().stream()).map(ch -> ch.delta().content().orElse(""))
        .collect(Collectors.joining())).isEqualTo(text);

    // the backend was asked for usage both times; the client's key never reached it
    List<RequestRecord> seen = gw.posts(0).subList(before, gw.posts(0).size());
    assertThat(seen).hasSize(2).allSatisfy(r -> {
      assertThat(r.bodyText()).contains("\"include_usage\":true");
      assertThat(r.header("authorization")).isNull();
      assertThat(r.model()).isEqualTo("llama-3-8b-instruct");
    });
  }
}
