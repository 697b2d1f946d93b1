package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.auth.ApiKey;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.store.UsageTotal;
import io.llmproxy.testing.MutableClock;
import io.llmproxy.testing.ScriptedBackend;
import io.llmproxy.testing.ScriptedBackend.Step;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.OpenStream;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 7, acceptance 5: usage is recorded exactly once for every request that reached a backend,
 * including a stream the client abandoned. The contract, in words: when the client goes away
 * mid-stream, the tokens produced until the cancel are counted (the prompt, and one token for each
 * output event that reached the gateway), as estimates; a backend that reports no usage is estimated
 * the same way. Checked through the store's daily totals and the key's quota counter (the usage
 * webhook is another issue's).
 */
class UsageAccountingTest {
  private static final String KEY = "sk-llmproxy-usage-001";
  private static final LocalDate DAY = LocalDate.parse("2026-01-14");

  private static final String YAML = """
      backends:
        - url: "${BACKEND}"
      auth: {enabled: true}
      api_keys:
        - {key: "%s", name: usage, user_id: u1, total_quota: 100000000, allowed_models: ["m", "other"]}
      data_dir: "${DATA}"
      health_check: {enabled: false}
      """.formatted(KEY);

  @TempDir
  Path dataDir;

  private final MutableClock clock = MutableClock.at("2026-01-14T10:00:00Z");
  private TestGateway gw;

  @AfterEach
  void stop() {
    if (gw != null) {
      gw.close();
    }
  }

  private TestGateway start(SimulatorOptions sim) {
    return TestGateway.builder(YAML.replace("${BACKEND}", "${SIM0}")).vars(Map.of("DATA", dataDir.toString()))
        .clock(clock).start(sim);
  }

  private ApiKey key() {
    return gw.gateway.access().keys().find(KEY);
  }

  /** The key's totals for the day; zeros when there are none. */
  private UsageTotal total() {
    List<UsageTotal> t = gw.gateway.store().usage(key().id(), DAY, DAY);
    assertThat(t).hasSizeLessThanOrEqualTo(1);
    return t.isEmpty() ? new UsageTotal(key().id(), DAY, 0, 0, 0) : t.get(0);
  }

  private long quotaUsed() {
    return gw.gateway.access().quotas().used(key());
  }

  private void awaitTotal(long requests, long prompt, long completion) {
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
        assertThat(total()).isEqualTo(new UsageTotal(key().id(), DAY, requests, prompt, completion)));
    assertThat(quotaUsed()).isEqualTo(prompt + completion);
  }

  @Test
  void everyRequestThatReachedABackendIsRecordedOnce() {
    gw = start(SimulatorOptions.defaults().withTtft(Duration.ofMillis(1)).withItl(Duration.ZERO).withTokens(6));
    long prompt = 0;
    long completion = 0;
    int requests = 0;
    for (int i = 0; i < 4; i++) {
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false), "authorization", "Bearer " + KEY);
      JsonObject usage = r.json().getJsonObject("usage");
      prompt += usage.getLong("prompt_tokens");
      completion += usage.getLong("completion_tokens");
      requests++;
    }
    for (String options : new String[] {null, "{\"include_usage\":true}"}) {
      for (int i = 0; i < 3; i++) {
        String body = "{\"model\":\"m\",\"stream\":true" + (options == null ? "" : ",\"stream_options\":" + options)
            + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
        Streamed s = gw.client.stream("/v1/chat/completions", body, "authorization", "Bearer " + KEY);
        assertThat(s.status()).isEqualTo(200);
        RequestRecord seen = gw.posts(0).get(gw.posts(0).size() - 1);
        prompt += Math.max(1, seen.body().length / 4); // the simulator's count, of the body it got
        completion += 6;
        requests++;
      }
    }
    awaitTotal(requests, prompt, completion);

    // refused before any backend: nothing recorded
    assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("forbidden", false), "authorization", "Bearer " + KEY)
        .status()).isEqualTo(403);
    assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(401);
    // the backend's own errors, passed through: one record each, no tokens (it generated none)
    gw.sim(0).options(gw.sim(0).options().withFail(1.0, 400));
    assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("other", false), "authorization", "Bearer " + KEY)
        .status()).isEqualTo(400);
    gw.sim(0).options(gw.sim(0).options().withFail(1.0, 500));
    assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("other", false), "authorization", "Bearer " + KEY)
        .status()).isEqualTo(500);
    assertThat(gw.client.stream("/v1/chat/completions", TestClient.chat("other", true), "authorization", "Bearer " + KEY)
        .status()).isEqualTo(500);
    awaitTotal(requests + 3, prompt, completion);
  }

  @Test
  void anAbandonedStreamIsCountedUpToTheCancelAsAnEstimate() {
    gw = start(SimulatorOptions.defaults().withTtft(Duration.ofMillis(5)).withItl(Duration.ofMillis(20)).withTokens(5000));
    String body = TestClient.chat("m", true);
    OpenStream open = gw.client.openStream("/v1/chat/completions", body, "authorization", "Bearer " + KEY);
    await().atMost(Duration.ofSeconds(5)).until(() -> open.text().split("\"content\":\" ").length > 10);
    open.request().reset();
    await().atMost(Duration.ofSeconds(2)).until(() -> gw.posts(0).get(0).clientDisconnected());
    int received = open.text().split("\"content\":\" ").length - 1;

    await().atMost(Duration.ofSeconds(5)).until(() -> total().requests() == 1);
    UsageTotal t = total();
    // no usage chunk came: the prompt at 4 bytes a token of the client's body, a token an output event
    assertThat(t.promptTokens()).isEqualTo((body.getBytes(StandardCharsets.UTF_8).length + 3) / 4);
    RequestRecord seen = gw.posts(0).get(0);
    assertThat(t.completionTokens()).as("tokens the client got %d, the backend sent %d", received, seen.chunksSent() - 1)
        .isBetween((long) received, (long) seen.chunksSent() - 1);
    assertThat(seen.chunksSent()).isLessThan(5000);
    assertThat(quotaUsed()).isEqualTo(t.promptTokens() + t.completionTokens());
    // exactly once: nothing more arrives later
    assertThat(gw.client.post("/v1/chat/completions", "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}",
        "authorization", "Bearer " + KEY).status()).isEqualTo(200);
    await().atMost(Duration.ofSeconds(5)).until(() -> total().requests() == 2);
    assertThat(total().completionTokens()).isEqualTo(t.completionTokens() + 1);
  }

  @Test
  void aBackendThatReportsNoUsageIsEstimated() {
    String json = "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
        + "{\"role\":\"assistant\",\"content\":\"hello there, from a backend without usage\"},\"finish_reason\":\"stop\"}]}";
    List<String> events = List.of(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n");
    Vertx vertx = Vertx.vertx();
    try (ScriptedBackend whole = ScriptedBackend.start(vertx, "application/json", List.of(new Step(0, Buffer.buffer(json))));
        ScriptedBackend streamed = ScriptedBackend.start(vertx, "text/event-stream",
            events.stream().map(e -> new Step(1, Buffer.buffer(e))).toList())) {
      gw = TestGateway.builder("""
          backends:
            - {url: "${WHOLE}", models: ["whole"]}
            - {url: "${STREAMED}", models: ["streamed"]}
          auth: {enabled: true}
          api_keys:
            - {key: "%s", name: usage}
          data_dir: "${DATA}"
          health_check: {enabled: false}
          """.formatted(KEY)).vars(Map.of("DATA", dataDir.toString(), "WHOLE", whole.url(), "STREAMED", streamed.url()))
          .clock(clock).start();
      String body = TestClient.chat("whole", false);
      Response r = gw.client.post("/v1/chat/completions", body, "authorization", "Bearer " + KEY);
      assertThat(r.text()).isEqualTo(json);
      long prompt = (body.length() + 3) / 4;
      long completion = (json.length() + 3) / 4; // 4 bytes of response a token
      awaitTotal(1, prompt, completion);

      String streamBody = TestClient.chat("streamed", true);
      Streamed s = gw.client.stream("/v1/chat/completions", streamBody, "authorization", "Bearer " + KEY);
      assertThat(s.text()).isEqualTo(String.join("", events));
      await().atMost(Duration.ofSeconds(5)).until(() -> total().requests() == 2);
      UsageTotal t = total();
      assertThat(t.promptTokens()).isEqualTo(prompt + (streamBody.length() + 3) / 4);
      // three output events: the role chunk and [DONE] are none
      assertThat(t.completionTokens() - completion).isEqualTo(3L);
      assertThat(quotaUsed()).isEqualTo(t.promptTokens() + t.completionTokens());
    } finally {
      if (gw != null) {
        gw.close();
        gw = null;
      }
      TestGateway.await(vertx.close());
    }
  }

  @Test
  void aStreamWhoseUsageEventIsTakenOutGoesChunkedThoughTheBackendGaveItsLength() {
    // The client did not ask for usage, so the gateway takes the usage event out: the backend's
    // content-length no longer holds, and passed on, it left the client waiting for bytes that never
    // came (and an HTTP/1.1 client reading its next response as the rest of this one).
    String content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
    String usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n";
    String done = "data: [DONE]\n\n";
    Vertx vertx = Vertx.vertx();
    try {
      HttpServer backend = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b ->
          req.response().putHeader("content-type", "text/event-stream").end(content + usage + done)));
      int port = TestGateway.await(backend.listen(0, "127.0.0.1")).actualPort();
      gw = TestGateway.builder(YAML.replace("${BACKEND}", "http://127.0.0.1:" + port))
          .vars(Map.of("DATA", dataDir.toString())).clock(clock).start();
      for (int i = 0; i < 2; i++) { // the second on the first one's connection
        Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m", true), "authorization", "Bearer " + KEY);
        assertThat(s.status()).isEqualTo(200);
        assertThat(s.headers().get("content-length")).isNull();
        assertThat(s.text()).isEqualTo(content + done);
      }
      awaitTotal(2, 6, 2);
    } finally {
      TestGateway.await(vertx.close());
    }
  }

  @Test
  void embeddingsWithoutUsageAreEstimatedAtNoCompletionTokens() {
    // An embedding generates no tokens: estimated from its 4 bytes a token, a 1536-float vector
    // would have cost the key thousands.
    String vector = "[" + "0.0123456,".repeat(1535) + "0.0123456]";
    String json = "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":" + vector
        + "}],\"model\":\"m\"}";
    Vertx vertx = Vertx.vertx();
    try (ScriptedBackend backend = ScriptedBackend.start(vertx, "application/json", List.of(new Step(0, Buffer.buffer(json))))) {
      gw = TestGateway.builder(YAML.replace("${BACKEND}", backend.url())).vars(Map.of("DATA", dataDir.toString()))
          .clock(clock).start();
      String body = "{\"model\":\"m\",\"input\":\"a sentence to embed\"}";
      Response r = gw.client.post("/v1/embeddings", body, "authorization", "Bearer " + KEY);
      assertThat(r.status()).isEqualTo(200);
      awaitTotal(1, (body.length() + 3) / 4, 0);
    } finally {
      TestGateway.await(vertx.close());
    }
  }
}
