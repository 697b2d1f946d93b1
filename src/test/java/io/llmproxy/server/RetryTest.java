package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.ScriptedBackend;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Event;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Acceptance 3: retries before the first byte, never after. */
class RetryTest {
  /** Backend "a" (weight 100) is always tried first; "b" is the one a retry lands on. */
  private static final String TWO_BACKENDS = """
      backends:
        - url: "${A}"
          name: a
          weight: 100
        - url: "${SIM0}"
          name: b
      routing:
        retry: {enabled: true, max_retries: 2, initial_wait: 1ms, max_wait: 5ms}
      health_check: {enabled: false}
      """;

  private static final SimulatorOptions FAST =
      SimulatorOptions.defaults().withTtft(Duration.ofMillis(5)).withItl(Duration.ofMillis(1)).withTokens(3);

  private static int closedPort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  @Test
  void refusedConnectionIsRetriedOnAnotherBackend() throws IOException {
    try (TestGateway gw = TestGateway.start(TWO_BACKENDS, Map.of("A", "http://127.0.0.1:" + closedPort()), FAST)) {
      for (boolean stream : new boolean[] {false, true}) {
        if (stream) {
          Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m", true));
          assertThat(s.status()).isEqualTo(200);
          assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("2");
          assertThat(s.text()).endsWith("data: [DONE]\n\n");
        } else {
          Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
          assertThat(r.status()).isEqualTo(200);
          assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
          assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
        }
      }
      assertThat(gw.posts(0)).hasSize(2);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_retries_total{reason=\"connect_error\"} 2.0");
    }
  }

  /**
   * A backend whose TCP connect succeeds but whose TLS handshake never ends (the kernel accepts for a
   * socket nobody reads) is a connect error at the connect timeout, and retried on another backend,
   * not held for Netty's handshake limit of 10 s.
   */
  @Test
  void aTlsHandshakeThatNeverEndsIsAConnectErrorAtTheConnectTimeout() throws IOException {
    try (ServerSocket silent = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        TestGateway gw = TestGateway.start(TWO_BACKENDS.replace("health_check:", "  timeouts: {connect: 300ms}\nhealth_check:"),
            Map.of("A", "https://localhost:" + silent.getLocalPort()), FAST)) {
      long start = System.nanoTime();
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
      assertThat(ms).isBetween(250L, 5_000L);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_retries_total{reason=\"connect_error\"} 1.0");
    }
  }

  @Test
  void status503IsRetriedOnAnotherBackend() {
    try (TestGateway gw = TestGateway.start(TWO_BACKENDS.replace("${A}", "${SIM1}"),
        FAST, FAST.withName("failing").withFail(1.0, 503))) {
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
      assertThat(gw.posts(1)).singleElement().satisfies(rec -> assertThat(rec.status()).isEqualTo(503));
      assertThat(gw.posts(0)).singleElement().satisfies(rec -> assertThat(rec.completed()).isTrue());
    }
  }

  @Test
  void whenEveryAttemptFailsTheLastBackendAnswerGoesBack() {
    try (TestGateway gw = TestGateway.start(TWO_BACKENDS.replace("${A}", "${SIM1}"),
        FAST.withFail(1.0, 503), FAST.withName("failing").withFail(1.0, 503))) {
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      assertThat(r.status()).isEqualTo(503);
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("3");
      assertThat(gw.posts(0).size() + gw.posts(1).size()).isEqualTo(3);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_retries_refused_total{reason=\"exhausted\"} 1.0");
    }
  }

  @Test
  void unreachableBackendsGive502() throws IOException {
    try (TestGateway gw = TestGateway.start("""
        backends:
          - url: "${A}"
        routing:
          retry: {enabled: true, max_retries: 1, initial_wait: 1ms, max_wait: 2ms}
        health_check: {enabled: false}
        """, Map.of("A", "http://127.0.0.1:" + closedPort()))) {
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      assertThat(r.status()).isEqualTo(502);
      assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("upstream_error");
      assertThat(r.json().getJsonObject("error").getString("message")).contains("refused the connection");
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
    }
  }

  @Test
  void backend400ComesBackUnchangedAndIsNotRetried() {
    try (TestGateway gw = TestGateway.start(TWO_BACKENDS.replace("${A}", "${SIM1}"),
        FAST, FAST.withName("picky").withFail(1.0, 400))) {
      Response direct = gw.client.send(io.vertx.core.http.HttpMethod.POST, "/v1/chat/completions",
          io.vertx.core.buffer.Buffer.buffer(TestClient.chat("m", false)));
      assertThat(direct.status()).isEqualTo(400);
      assertThat(direct.header("x-llmproxy-attempts")).isEqualTo("1");
      assertThat(direct.header("x-llmproxy-backend")).isEqualTo("a");
      Response fromBackend = TestClient.to(gw.vertx, "127.0.0.1", gw.sim(1).port())
          .post("/v1/chat/completions", TestClient.chat("m", false));
      assertThat(direct.body()).isEqualTo(fromBackend.body());
      assertThat(direct.header("content-type")).isEqualTo(fromBackend.header("content-type"));
      assertThat(gw.posts(0)).isEmpty();
    }
  }

  @Test
  void afterTheFirstByteThereIsNoRetryButOneErrorEvent() {
    try (TestGateway gw = TestGateway.start(TWO_BACKENDS.replace("${A}", "${SIM1}"),
        FAST, FAST.withName("dying").withItl(Duration.ofMillis(30)).withTokens(200))) {
      Future<Streamed> f = gw.client.streamAsync("/v1/chat/completions", TestClient.chat("m", true));
      await().atMost(Duration.ofSeconds(5)).until(() -> !gw.posts(1).isEmpty() && gw.posts(1).get(0).chunksSent() >= 4);
      TestGateway.await(gw.sim(1).close()); // the backend dies mid-stream
      Streamed s = TestGateway.await(f);
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("1");
      List<Event> events = s.events();
      assertThat(events.get(events.size() - 1).data()).startsWith("{\"error\":").contains("\"code\":\"upstream_error\"");
      assertThat(events.stream().filter(e -> e.data().startsWith("{\"error\"")).count()).isEqualTo(1);
      assertThat(events).noneMatch(e -> e.data().equals("[DONE]"));
      assertThat(gw.posts(0)).isEmpty();
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_retries_refused_total{reason=\"committed\"} 1.0");
    }
  }

  @Test
  void firstTokenTimeoutBeforeAnyByteIsRetried() {
    try (TestGateway gw = TestGateway.start(TWO_BACKENDS.replace("${A}", "${SIM1}").replace(
            "health_check:", "  timeouts: {first_token: 200ms}\nhealth_check:"),
        FAST, FAST.withName("stuck").withTtft(Duration.ofSeconds(30)))) {
      Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m", true));
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("b");
      await().atMost(Duration.ofSeconds(1)).until(() -> gw.posts(1).get(0).clientDisconnected());
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_retries_total{reason=\"first_token_timeout\"} 1.0");
    }
  }

  /**
   * A stream whose events the gateway does not read as tokens (another API's, passed through) is
   * already the client's once its first byte went out: the first-token timeout does not cut it while
   * it flows. Only silence longer than the idle timeout would.
   */
  @Test
  void aFlowingStreamWithoutTokensTheGatewayKnowsIsNotCutAtTheFirstTokenTimeout() {
    List<ScriptedBackend.Step> script = new java.util.ArrayList<>();
    StringBuilder expected = new StringBuilder();
    for (int i = 0; i < 12; i++) {
      String event = "event: progress\ndata: {\"step\":" + i + "}\n\n";
      script.add(new ScriptedBackend.Step(i == 0 ? 0 : 50, io.vertx.core.buffer.Buffer.buffer(event)));
      expected.append(event);
    }
    io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
    try (ScriptedBackend backend = ScriptedBackend.start(vertx, "text/event-stream", script);
        TestGateway gw = TestGateway.start("""
            backends: [{url: "%s"}]
            routing:
              timeouts: {first_token: 200ms, idle: 2s}
            health_check: {enabled: false}
            """.formatted(backend.url()))) {
      Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m", true));
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.text()).as("every byte, no error event").isEqualTo(expected.toString());
    } finally {
      TestGateway.await(vertx.close());
    }
  }

  /**
   * SPEC §6.3: a 429's retry-after is honoured (up to max_wait) when the retry must go back to the
   * backend that sent it. Here the only other candidate is down by its health check, so it does not
   * count as one to try: the retry waits the second the backend asked for, not the jittered backoff.
   */
  @Test
  void a429sRetryAfterIsHonouredWhenTheOnlyUntriedCandidateIsDown() {
    try (TestGateway gw = TestGateway.start("""
        backends:
          - url: "${SIM0}"
            name: a
          - url: "${SIM1}"
            name: b
        routing:
          retry: {enabled: true, max_retries: 1, initial_wait: 1ms, max_wait: 2s}
        health_check: {interval: 50ms, timeout: 40ms, healthy_threshold: 1, unhealthy_threshold: 1}
        outlier_detection: {enabled: false}
        """, FAST.withName("a").withFail(1.0, 429), FAST.withName("b").withHealthy(false))) {
      List<io.llmproxy.routing.Backend> backends = gw.gateway.router().backends();
      await().atMost(Duration.ofSeconds(5)).until(() -> backends.get(0).health() == io.llmproxy.routing.Backend.Health.UP
          && backends.get(1).health() == io.llmproxy.routing.Backend.Health.DOWN);
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      assertThat(r.status()).isEqualTo(429);
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(gw.posts(1)).isEmpty();
      assertThat(gw.posts(0)).hasSize(2);
      long gapMs = TimeUnit.NANOSECONDS.toMillis(gw.posts(0).get(1).receivedAtNanos() - gw.posts(0).get(0).receivedAtNanos());
      // retry-after: 1 (what the simulator sends with its 429s), within max_wait; 500 ms of slack
      assertThat(gapMs).as("ms between a's two requests").isBetween(1000L, 2500L);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_retries_total{reason=\"status_429\"} 1.0");
    }
  }
}
