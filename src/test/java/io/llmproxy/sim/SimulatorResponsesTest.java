package io.llmproxy.sim;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class SimulatorResponsesTest extends SimTestBase {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static JsonNode json(String s) throws Exception {
    return JSON.readTree(s);
  }

  @Test
  void chatCompletionIsOneOpenAiObjectWithUsage() throws Exception {
    start(fast().withName("gpu-1").withTokens(3));
    TestHttp.Reply reply = http.post(url("/v1/chat/completions"),
        "{\"model\":\"llama\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");

    assertThat(reply.status()).isEqualTo(200);
    assertThat(reply.headers().get("content-type")).isEqualTo("application/json");
    assertThat(reply.headers().get("content-length"))
        .isEqualTo(String.valueOf(reply.body().length()));
    RequestRecord r = only("/v1/chat/completions");
    int prompt = r.body().length / 4;
    JsonNode body = json(reply.body());
    assertThat(reply.body()).isEqualTo("{\"id\":\"chatcmpl-" + r.id()
        + "\",\"object\":\"chat.completion\",\"created\":" + body.get("created").asLong()
        + ",\"model\":\"llama\",\"system_fingerprint\":\"gpu-1\",\"choices\":[{\"index\":0,"
        + "\"message\":{\"role\":\"assistant\",\"content\":\" Hello from gpu-1\"},"
        + "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":" + prompt
        + ",\"total_tokens\":" + (prompt + 3) + ",\"completion_tokens\":3}}");
    assertThat(r.stream()).isFalse();
    assertThat(r.chunksSent()).isZero();
    assertThat(r.chunkSentAtNanos()).isEmpty();
    assertThat(r.completed()).isTrue();
  }

  @Test
  void nonStreamingWaitsForAllTokens() {
    start(fast().withTtft(Duration.ofMillis(50)).withItl(Duration.ofMillis(10)).withTokens(6));
    long sent = System.nanoTime();
    http.post(url("/v1/chat/completions"), "{\"model\":\"m\",\"stream\":false}");

    assertThat(System.nanoTime() - sent).isGreaterThanOrEqualTo(Duration.ofMillis(95).toNanos());
  }

  @Test
  void completionHonoursMaxTokens() throws Exception {
    start(fast());
    JsonNode body = json(http.post(url("/v1/completions"),
        "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":2}").body());

    assertThat(body.get("object").asText()).isEqualTo("text_completion");
    assertThat(body.get("id").asText()).startsWith("cmpl-");
    assertThat(body.at("/choices/0/text").asText()).isEqualTo(" Hello from");
    assertThat(body.at("/choices/0/finish_reason").asText()).isEqualTo("length");
    assertThat(body.at("/usage/completion_tokens").asInt()).isEqualTo(2);
  }

  @Test
  void modelIsEchoedOrDefaulted() throws Exception {
    start(fast().withModels("first", "second"));
    JsonNode named = json(http.post(url("/v1/chat/completions"), "{\"model\":\"other\"}").body());
    JsonNode unnamed = json(http.post(url("/v1/chat/completions"), "{}").body());

    assertThat(named.get("model").asText()).isEqualTo("other");
    assertThat(unnamed.get("model").asText()).isEqualTo("first");
    assertThat(sim.requests()).extracting(RequestRecord::model).containsExactly("other", null);
  }

  @Test
  void embeddingsOnePerInput() throws Exception {
    start(fast());
    JsonNode many = json(http.post(url("/v1/embeddings"),
        "{\"model\":\"e5\",\"input\":[\"a\",\"b\",\"c\"]}").body());
    JsonNode one = json(http.post(url("/v1/embeddings"),
        "{\"model\":\"e5\",\"input\":\"a\"}").body());

    assertThat(many.get("object").asText()).isEqualTo("list");
    assertThat(many.get("model").asText()).isEqualTo("e5");
    assertThat(many.get("data")).hasSize(3);
    assertThat(many.at("/data/2/index").asInt()).isEqualTo(2);
    assertThat(many.at("/data/0/object").asText()).isEqualTo("embedding");
    assertThat(many.at("/data/0/embedding")).hasSize(8);
    assertThat(many.at("/data/0/embedding")).isEqualTo(one.at("/data/0/embedding"));
    assertThat(many.at("/data/0/embedding")).isNotEqualTo(many.at("/data/1/embedding"));
    assertThat(many.at("/usage/prompt_tokens").asInt())
        .isEqualTo(many.at("/usage/total_tokens").asInt()).isPositive();
  }

  @Test
  void modelsListsTheServedModels() {
    start(fast().withModels("a", "b"));
    TestHttp.Reply reply = http.get(url("/v1/models"));

    assertThat(reply.status()).isEqualTo(200);
    assertThat(reply.body()).isEqualTo("{\"object\":\"list\",\"data\":["
        + "{\"id\":\"a\",\"object\":\"model\",\"created\":1704067200,\"owned_by\":\"vllm\","
        + "\"root\":\"a\",\"parent\":null,\"max_model_len\":8192},"
        + "{\"id\":\"b\",\"object\":\"model\",\"created\":1704067200,\"owned_by\":\"vllm\","
        + "\"root\":\"b\",\"parent\":null,\"max_model_len\":8192}]}");
  }

  @Test
  void healthFollowsTheOptionsAtRuntime() {
    start(fast());
    assertThat(http.get(url("/health")).status()).isEqualTo(200);

    sim.options(sim.options().withHealthy(false));
    assertThat(http.get(url("/health")).status()).isEqualTo(503);

    sim.options(sim.options().withHealthy(true));
    assertThat(http.get(url("/health")).status()).isEqualTo(200);
  }

  @Test
  void strictModelsRejectUnknownModels() throws Exception {
    start(fast().withModels("known").withStrictModels(true));
    TestHttp.Reply unknown = http.post(url("/v1/chat/completions"), "{\"model\":\"nope\"}");
    TestHttp.Reply known = http.post(url("/v1/chat/completions"), "{\"model\":\"known\"}");

    assertThat(unknown.status()).isEqualTo(404);
    assertThat(json(unknown.body()).at("/error/code").asText()).isEqualTo("model_not_found");
    assertThat(json(unknown.body()).at("/error/message").asText()).contains("nope");
    assertThat(known.status()).isEqualTo(200);
  }

  @Test
  void unknownPathsAre404AndBadJsonIs400InOpenAiShape() {
    start(fast());
    TestHttp.Reply notFound = http.get(url("/v2/whatever"));
    TestHttp.Reply badJson = http.post(url("/v1/chat/completions"), "not json");
    TestHttp.Reply badMax = http.post(url("/v1/chat/completions"), "{\"max_tokens\":0}");

    assertThat(notFound.status()).isEqualTo(404);
    assertThat(notFound.body()).isEqualTo("{\"error\":{\"message\":\"Invalid URL (GET /v2/whatever)"
        + "\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}");
    assertThat(badJson.status()).isEqualTo(400);
    assertThat(badJson.body()).isEqualTo("{\"error\":{\"message\":\"The request body is not a JSON "
        + "object.\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}");
    assertThat(badMax.status()).isEqualTo(400);
    assertThat(sim.stats().failed()).isEqualTo(3);
  }

  @Test
  void failRateOneFailsEveryRequestWithTheStatus() throws Exception {
    start(fast().withFail(1.0, 503));
    TestHttp.Reply chat = http.post(url("/v1/chat/completions"), "{\"stream\":true}");
    TestHttp.Reply tgi = http.post(url("/generate"), "{\"inputs\":\"x\"}");

    assertThat(chat.status()).isEqualTo(503);
    assertThat(json(chat.body()).at("/error/type").asText()).isEqualTo("server_error");
    assertThat(chat.headers().get("retry-after")).isNull();
    assertThat(tgi.status()).isEqualTo(503);
    assertThat(http.get(url("/health")).status()).as("health is not failed").isEqualTo(200);
    assertThat(sim.stats().failed()).isEqualTo(2);
  }

  @Test
  void injected429CarriesRetryAfter() throws Exception {
    start(fast().withFail(1.0, 429));
    TestHttp.Reply reply = http.post(url("/v1/completions"), "{\"model\":\"m\"}");

    assertThat(reply.status()).isEqualTo(429);
    assertThat(reply.headers().get("retry-after")).isEqualTo("1");
    assertThat(json(reply.body()).at("/error/code").asText()).isEqualTo("rate_limit_exceeded");
    assertThat(only("/v1/completions").status()).isEqualTo(429);
  }

  @Test
  void tgiGenerate() {
    start(fast().withName("t"));
    TestHttp.Reply reply = http.post(url("/generate"),
        "{\"inputs\":\"x\",\"parameters\":{\"max_new_tokens\":4}}");

    assertThat(reply.status()).isEqualTo(200);
    assertThat(reply.body()).isEqualTo("{\"generated_text\":\" Hello from t,\"}");
  }

  @Test
  void recordsKeepHeadersAndBodyAsReceived() {
    start(fast());
    http.post(url("/v1/embeddings"), "{\"input\":\"x\"}");

    RequestRecord r = only("/v1/embeddings");
    assertThat(r.method()).isEqualTo("POST");
    assertThat(r.bodyText()).isEqualTo("{\"input\":\"x\"}");
    assertThat(r.headers()).containsKey("content-length");
    assertThat(r.header("Content-Length")).isEqualTo("13");
    assertThat(r.receivedAtNanos()).isPositive();
  }
}
