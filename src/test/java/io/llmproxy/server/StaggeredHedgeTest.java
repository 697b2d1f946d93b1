package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.routing.Backend.Health;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.ScriptedBackend;
import io.llmproxy.testing.ScriptedBackend.Step;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Event;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Issue 6, acceptance 3, 4, 6 and 7 (SPEC §6.4): the staggered hedge after a fixed threshold, the
 * first token (or, not streaming, the first complete response) winning, a failure starting the next
 * attempt at once, the commit after which no attempt is ever started, a single candidate left
 * alone, and the {@code x-llmproxy-hedge: off} opt-out; with what each backend saw and the metrics.
 *
 * <p>Backend {@code a} (weight 100) is always the primary; the fallback rule makes {@code b} the
 * first hedge and {@code c} the next. No cold-start race: every request starts with the primary
 * alone.
 */
class StaggeredHedgeTest {
  private static final long MS = 1_000_000L;

  private static final String TWO = """
      backends:
        - {url: "${SIM0}", name: a, weight: 100}
        - {url: "${SIM1}", name: b}
      routing:
        fallback: [{primary: a, fallback: [b]}]
        retry: {enabled: true, max_retries: 2, initial_wait: 2s, max_wait: 4s}
        hedge: {enabled: true, cold_start_race: false, threshold: THRESHOLD, min_threshold: 1ms, max_parallel: 2,
                budget_percent: 100}
      health_check: {enabled: false}
      outlier_detection: {enabled: false}
      """;

  private static final String THREE = """
      backends:
        - {url: "${SIM0}", name: a, weight: 100}
        - {url: "${SIM1}", name: b}
        - {url: "${SIM2}", name: c}
      routing:
        fallback: [{primary: a, fallback: [b, c]}]
        retry: {enabled: true, max_retries: 2, initial_wait: 2s, max_wait: 4s}
        hedge: {enabled: true, cold_start_race: false, threshold: THRESHOLD, min_threshold: 1ms, max_parallel: 2,
                budget_percent: 100}
      health_check: {enabled: false}
      outlier_detection: {enabled: false}
      """;

  private static final SimulatorOptions BASE =
      SimulatorOptions.defaults().withItl(Duration.ofMillis(5)).withTokens(4);
  private static final String STREAM = TestClient.chat("m", true);
  private static final String NON_STREAM = TestClient.chat("m", false);

  private static String two(String threshold) {
    return TWO.replace("THRESHOLD", threshold);
  }

  private static String three(String threshold) {
    return THREE.replace("THRESHOLD", threshold);
  }

  // ---- acceptance 3: the staggered hedge

  @Test
  void aStalledPrimaryGetsAHedgeAfterTheThresholdAndTheHedgesFirstTokenWins() {
    try (TestGateway gw = TestGateway.start(two("50ms"),
        BASE.withName("a").withTtft(Duration.ofSeconds(3)), BASE.withName("b").withTtft(Duration.ofMillis(20)))) {
      long sent = System.nanoTime();
      Streamed s = gw.client.stream("/v1/chat/completions", STREAM);

      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("b");
      assertThat(s.headers().get("x-llmproxy-hedged")).isEqualTo("true");
      assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(s.content()).isEqualTo(" Hello from b,");
      assertThat(s.text()).endsWith("data: [DONE]\n\n");

      await().atMost(Duration.ofSeconds(2)).until(() -> single(gw.posts(0)).clientDisconnected());
      RequestRecord a = single(gw.posts(0));
      RequestRecord b = single(gw.posts(1));
      assertHedgeTimed(sent, a, b, 50, 500);
      assertThat(a.chunksSent()).isZero();
      assertThat(a.completed()).isFalse();
      assertThat(a.disconnectedAtNanos()).as("the primary is cancelled at the hedge's first token")
          .isGreaterThanOrEqualTo(b.chunkSentAtNanos()[1]);
      assertThat(gw.sim(0).connectionClosedAtNanos(a.connectionId())).isPresent();
      assertThat(b.completed()).isTrue();
      assertThat(b.clientDisconnected()).isFalse();

      await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
        Scrape m = Scrape.of(gw);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "sent")).isEqualTo(1);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "won")).isEqualTo(1);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "budget_exhausted")).isZero();
        assertThat(m.value("llmproxy_races_total")).isZero();
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "a", "outcome", "lost")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "b", "outcome", "won")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total")).isEqualTo(2);
        assertThat(m.value("llmproxy_cancelled_upstream_total", "reason", "hedge_loser")).isEqualTo(1);
        assertThat(m.value("llmproxy_hedge_threshold_ms", "backend", "a", "stream", "true")).isEqualTo(50);
      });
    }
  }

  @Test
  void afterTheHedgeIsSentThePrimaryStillWinsIfItsFirstTokenComesFirst() {
    try (TestGateway gw = TestGateway.start(two("50ms"),
        BASE.withName("a").withTtft(Duration.ofMillis(400)), BASE.withName("b").withTtft(Duration.ofSeconds(3)))) {
      long sent = System.nanoTime();
      Streamed s = gw.client.stream("/v1/chat/completions", STREAM);

      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("a");
      assertThat(s.headers().get("x-llmproxy-hedged")).isEqualTo("true");
      assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(s.content()).isEqualTo(" Hello from a,");

      await().atMost(Duration.ofSeconds(2)).until(() -> single(gw.posts(1)).clientDisconnected());
      RequestRecord a = single(gw.posts(0));
      RequestRecord b = single(gw.posts(1));
      assertHedgeTimed(sent, a, b, 50, 390);
      assertThat(b.chunksSent()).isZero();
      assertThat(b.disconnectedAtNanos()).isGreaterThanOrEqualTo(a.chunkSentAtNanos()[1]);
      assertThat(a.completed()).isTrue();

      await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
        Scrape m = Scrape.of(gw);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "sent")).isEqualTo(1);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "won")).isZero();
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "a", "outcome", "won")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "b", "outcome", "lost")).isEqualTo(1);
        assertThat(m.value("llmproxy_cancelled_upstream_total", "reason", "hedge_loser")).isEqualTo(1);
      });
    }
  }

  /** Also usage and cancellation exactly once: tokens from the winner only, the loser's prompt wasted. */
  @Test
  void nonStreamingTheFirstCompleteResponseWins() {
    try (TestGateway gw = TestGateway.start(two("50ms"),
        BASE.withName("a").withTtft(Duration.ofSeconds(3)), BASE.withName("b").withTtft(Duration.ofMillis(20)))) {
      long sent = System.nanoTime();
      Response r = gw.client.post("/v1/chat/completions", NON_STREAM);

      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
      assertThat(r.header("x-llmproxy-hedged")).isEqualTo("true");
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      JsonObject body = r.json();
      assertThat(body.getString("system_fingerprint")).isEqualTo("b");
      long prompt = body.getJsonObject("usage").getLong("prompt_tokens");
      assertThat(body.getJsonObject("usage").getLong("completion_tokens")).isEqualTo(4);

      await().atMost(Duration.ofSeconds(2)).until(() -> single(gw.posts(0)).clientDisconnected());
      RequestRecord a = single(gw.posts(0));
      RequestRecord b = single(gw.posts(1));
      assertHedgeTimed(sent, a, b, 50, 500);
      assertThat(a.completed()).isFalse();
      assertThat(a.status()).as("the primary had not answered").isZero();
      assertThat(b.completed()).isTrue();
      assertThat(b.bodyText()).isEqualTo(a.bodyText());

      await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
        Scrape m = Scrape.of(gw);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "sent")).isEqualTo(1);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "won")).isEqualTo(1);
        assertThat(m.value("llmproxy_cancelled_upstream_total", "reason", "hedge_loser")).isEqualTo(1);
        assertThat(m.value("llmproxy_cancelled_upstream_total")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "a", "outcome", "lost")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "b", "outcome", "won")).isEqualTo(1);
        assertThat(m.value("llmproxy_tokens_total", "type", "prompt")).isEqualTo(prompt);
        assertThat(m.value("llmproxy_tokens_total", "type", "completion")).isEqualTo(4);
        assertThat(m.value("llmproxy_tokens_total", "backend", "a")).isZero();
        assertThat(m.value("llmproxy_wasted_tokens_total", "type", "prompt")).isEqualTo(prompt);
        assertThat(m.value("llmproxy_wasted_tokens_total", "type", "completion")).isZero();
      });
    }
  }

  /** A primary whose head and half its body come at once but whose body ends late does not win by its first byte. */
  @Test
  void nonStreamingTheFirstByteDoesNotDecide() {
    Vertx vertx = Vertx.vertx();
    String late = "{\"id\":\"chatcmpl-late\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
        + "\"system_fingerprint\":\"a\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"late\"},"
        + "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"total_tokens\":2,\"completion_tokens\":1}}";
    try (ScriptedBackend a = ScriptedBackend.start(vertx, "application/json",
            List.of(new Step(0, Buffer.buffer(late.substring(0, 40))), new Step(3000, Buffer.buffer(late.substring(40)))));
        TestGateway gw = TestGateway.start(two("50ms").replace("${SIM0}", "${A}").replace("${SIM1}", "${SIM0}"), Map.of("A", a.url()),
            BASE.withName("b").withTtft(Duration.ofMillis(20)))) {
      long sent = System.nanoTime();
      Response r = gw.client.post("/v1/chat/completions", NON_STREAM);

      assertThat((System.nanoTime() - sent) / MS).isLessThan(2500);
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(r.json().getString("system_fingerprint")).isEqualTo("b");
      assertThat(a.receivedBodies).hasSize(1);
      assertThat(single(gw.posts(0)).completed()).isTrue();
      await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
        Scrape m = Scrape.of(gw);
        assertThat(m.value("llmproxy_cancelled_upstream_total", "reason", "hedge_loser")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "a", "outcome", "lost")).isEqualTo(1);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "won")).isEqualTo(1);
      });
    } finally {
      TestGateway.await(vertx.close());
    }
  }

  @Test
  void a503FromThePrimaryStartsTheNextAttemptAtOnce() {
    // Threshold 5 s and a retry backoff of 2 s: only "at once" can explain b's request arriving quickly.
    try (TestGateway gw = TestGateway.start(two("5s"),
        BASE.withName("a").withFail(1.0, 503), BASE.withName("b").withTtft(Duration.ofMillis(20)))) {
      long sent = System.nanoTime();
      Streamed s = gw.client.stream("/v1/chat/completions", STREAM);

      assertThat((System.nanoTime() - sent) / MS).isLessThan(1500);
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("b");
      assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(s.headers().get("x-llmproxy-hedged")).as("the two attempts never ran at once").isNull();
      assertThat(s.content()).isEqualTo(" Hello from b,");
      RequestRecord a = single(gw.posts(0));
      RequestRecord b = single(gw.posts(1));
      assertThat(a.status()).isEqualTo(503);
      assertThat((b.receivedAtNanos() - a.receivedAtNanos()) / MS).as("ms from the primary's request to the next one")
          .isLessThan(1000);
      assertThat(b.completed()).isTrue();
      await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
        Scrape m = Scrape.of(gw);
        assertThat(m.value("llmproxy_retries_total", "reason", "status_5xx")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "a", "outcome", "failed")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "b", "outcome", "won")).isEqualTo(1);
      });
    }
  }

  @Test
  void aHedgeThatFailsIsReplacedAtOnceWhileThePrimaryRuns() {
    // a stalls; the hedge to b after 1 s gets a 503; c is asked at once, not a threshold later.
    try (TestGateway gw = TestGateway.start(three("1s"),
        BASE.withName("a").withTtft(Duration.ofSeconds(10)), BASE.withName("b").withFail(1.0, 503),
        BASE.withName("c").withTtft(Duration.ofMillis(20)))) {
      long sent = System.nanoTime();
      Streamed s = gw.client.stream("/v1/chat/completions", STREAM);

      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("c");
      assertThat(s.headers().get("x-llmproxy-hedged")).isEqualTo("true");
      assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("3");
      assertThat(s.content()).isEqualTo(" Hello from c,");
      await().atMost(Duration.ofSeconds(2)).until(() -> single(gw.posts(0)).clientDisconnected());
      RequestRecord a = single(gw.posts(0));
      RequestRecord b = single(gw.posts(1));
      RequestRecord c = single(gw.posts(2));
      assertHedgeTimed(sent, a, b, 1000, 1500);
      assertThat(b.status()).isEqualTo(503);
      assertThat((c.receivedAtNanos() - b.receivedAtNanos()) / MS).as("ms from b's request to c's").isLessThan(500);
      assertThat(c.completed()).isTrue();
      await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
        Scrape m = Scrape.of(gw);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "sent")).isEqualTo(1);
        assertThat(m.value("llmproxy_hedges_total", "outcome", "won")).isEqualTo(1);
        assertThat(m.value("llmproxy_retries_total", "reason", "status_5xx")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "a", "outcome", "lost")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "b", "outcome", "failed")).isEqualTo(1);
        assertThat(m.value("llmproxy_upstream_attempts_total", "backend", "c", "outcome", "won")).isEqualTo(1);
      });
    }
  }

  @Test
  void aFailedHedgeWithNoUntriedCandidateUpIsNotReplacedByATriedOne() {
    // c is down: when the hedge to b fails, nothing untried can take its place, and neither a (still
    // running) nor b may be asked again; a's answer comes in its time.
    try (TestGateway gw = TestGateway.start(three("200ms").replace("health_check: {enabled: false}",
            "health_check: {interval: 100ms, timeout: 80ms, healthy_threshold: 1, unhealthy_threshold: 1}"),
        BASE.withName("a").withTtft(Duration.ofMillis(1500)), BASE.withName("b").withFail(1.0, 503),
        BASE.withName("c").withHealthy(false))) {
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.router().backends().get(2).health() == Health.DOWN
          && gw.gateway.router().backends().get(0).health() == Health.UP);
      Streamed s = gw.client.stream("/v1/chat/completions", STREAM);
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("a");
      assertThat(s.content()).isEqualTo(" Hello from a,");
      assertThat(gw.posts(0)).as("requests a saw").hasSize(1);
      assertThat(gw.posts(1)).as("requests b saw").hasSize(1);
      assertThat(gw.posts(2)).as("requests c saw").isEmpty();
    }
  }

  // ---- acceptance 4: the commit

  @Test
  void aWinnerThatStallsMidStreamLongerThanTheThresholdGetsNoHedge() {
    // First token at once, then 300 ms between tokens, with a 100 ms threshold.
    try (TestGateway gw = TestGateway.start(three("100ms"),
        BASE.withName("a").withTtft(Duration.ZERO).withItl(Duration.ofMillis(300)).withTokens(4),
        BASE.withName("b"), BASE.withName("c"))) {
      Streamed s = gw.client.stream("/v1/chat/completions", STREAM);

      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("a");
      assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("1");
      assertThat(s.headers().get("x-llmproxy-hedged")).isNull();
      assertThat(s.content()).isEqualTo(" Hello from a,");
      List<Event> tokens = s.events().stream().filter(Event::isContent).toList();
      assertThat((tokens.get(3).atNanos() - tokens.get(0).atNanos()) / MS).as("the stall the client saw")
          .isGreaterThanOrEqualTo(600);
      assertThat(single(gw.posts(0)).completed()).isTrue();
      assertThat(gw.posts(1)).as("b saw").isEmpty();
      assertThat(gw.posts(2)).as("c saw").isEmpty();
      Scrape m = Scrape.of(gw);
      assertThat(m.value("llmproxy_hedges_total")).isZero();
      assertThat(m.value("llmproxy_upstream_attempts_total")).isEqualTo(1);
    }
  }

  @Test
  void aWinnerThatBreaksAfterItsFirstTokenEndsTheStreamWithOneErrorAndNoNewAttempt() {
    // a stalls, b wins the hedge and streams slowly, then dies; c must never be asked.
    try (TestGateway gw = TestGateway.start(three("50ms"),
        BASE.withName("a").withTtft(Duration.ofSeconds(10)),
        BASE.withName("b").withTtft(Duration.ofMillis(20)).withItl(Duration.ofMillis(30)).withTokens(200),
        BASE.withName("c").withTtft(Duration.ofMillis(20)))) {
      Future<Streamed> f = gw.client.streamAsync("/v1/chat/completions", STREAM);
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(1).size() == 1 && gw.posts(1).get(0).chunksSent() >= 5);
      TestGateway.await(gw.sim(1).close()); // the winner dies mid-stream

      Streamed s = TestGateway.await(f);
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("b");
      assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("2");
      List<Event> events = s.events();
      assertThat(events.stream().filter(e -> e.data().startsWith("{\"error\"")).count()).isEqualTo(1);
      assertThat(events.get(events.size() - 1).data()).startsWith("{\"error\":").contains("\"code\":\"upstream_error\"");
      assertThat(events).noneMatch(e -> e.data().equals("[DONE]"));
      assertThat(s.content()).startsWith(" Hello from b");

      assertThat(single(gw.posts(0)).clientDisconnected()).isTrue();
      assertThat(gw.posts(2)).as("c saw").isEmpty();
      Scrape m = Scrape.of(gw);
      assertThat(m.value("llmproxy_retries_refused_total", "reason", "committed")).isEqualTo(1);
      assertThat(m.value("llmproxy_retries_total")).isZero();
      assertThat(m.value("llmproxy_hedges_total", "outcome", "sent")).isEqualTo(1);
      assertThat(m.value("llmproxy_upstream_attempts_total")).isEqualTo(2);
    }
  }

  // ---- acceptance 6: one candidate

  @Test
  void oneCandidateIsAPlainProxyWithNothingAddedAndNoExtraAttempt() {
    // Hedging on with a 5 ms threshold and room for 3 attempts, but only "solo" serves solo-model.
    String yaml = """
        backends:
          - {url: "${SIM0}", name: solo, models: ["solo-model"]}
          - {url: "${SIM1}", name: other, models: ["other-model"]}
        routing:
          hedge: {enabled: true, cold_start_race: true, threshold: 5ms, min_threshold: 1ms, max_parallel: 3,
                  budget_percent: 100}
        health_check: {enabled: false}
        outlier_detection: {enabled: false}
        """;
    try (TestGateway gw = TestGateway.start(yaml,
        BASE.withName("solo").withEarlyHeaders(true).withTtft(Duration.ofMillis(500)).withTokens(3),
        BASE.withName("other"))) {
      for (int i = 0; i < 2; i++) {
        long sent = System.nanoTime();
        Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("solo-model", true));
        assertThat(s.status()).isEqualTo(200);
        assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("solo");
        assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("1");
        assertThat(s.headers().get("x-llmproxy-hedged")).isNull();
        assertThat(s.content()).isEqualTo(" Hello from solo");
        // Nothing is held: the head and role chunk reach the client long before the first token.
        assertThat((s.chunks().get(0).atNanos() - sent) / MS).as("ms to the client's first byte").isLessThan(250);
        RequestRecord seen = gw.posts(0).get(i);
        Event token = s.events().stream().filter(Event::isContent).findFirst().orElseThrow();
        assertThat((token.atNanos() - seen.chunkSentAtNanos()[1]) / MS).as("ms the gateway added to the first token")
            .isLessThan(50);
      }
      for (int i = 0; i < 2; i++) {
        Response r = gw.client.post("/v1/chat/completions", TestClient.chat("solo-model", false));
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("1");
        assertThat(r.header("x-llmproxy-hedged")).isNull();
      }
      assertThat(gw.posts(0)).as("solo saw one request per client request").hasSize(4)
          .allSatisfy(rec -> assertThat(rec.completed()).isTrue());
      assertThat(gw.posts(1)).isEmpty();
      Scrape m = Scrape.of(gw);
      assertThat(m.value("llmproxy_hedges_total")).isZero();
      assertThat(m.value("llmproxy_races_total")).isZero();
      assertThat(m.value("llmproxy_cancelled_upstream_total")).isZero();
      assertThat(m.value("llmproxy_upstream_attempts_total")).isEqualTo(4);
      assertThat(m.value("llmproxy_upstream_attempts_total", "outcome", "won")).isEqualTo(4);
    }
  }

  /**
   * A model whose other candidate is down has one routable candidate: its requests take nothing from
   * the hedge budget, which no hedge could use, so another model's hedge is still sent. The budget is
   * the floor alone (budget_percent 0): 10 extra attempts in the window.
   */
  @Test
  void aCandidateThatIsDownSpendsNoHedgeBudgetThatAnotherModelNeeds() {
    String yaml = """
        backends:
          - {url: "${SIM0}", name: a, models: ["m1"]}
          - {url: "${SIM1}", name: b, models: ["m1"]}
          - {url: "${SIM2}", name: c, models: ["m2"]}
          - {url: "${SIM3}", name: d, models: ["m2"]}
        routing:
          hedge: {enabled: true, cold_start_race: false, threshold: 5ms, min_threshold: 1ms, max_parallel: 2,
                  budget_percent: 0}
        health_check: {interval: 50ms, timeout: 40ms, healthy_threshold: 1, unhealthy_threshold: 1}
        outlier_detection: {enabled: false}
        """;
    SimulatorOptions slow = BASE.withTtft(Duration.ofMillis(60));
    try (TestGateway gw = TestGateway.start(yaml, slow.withName("a"), slow.withName("b").withHealthy(false),
        slow.withName("c"), slow.withName("d"))) {
      List<io.llmproxy.routing.Backend> backends = gw.gateway.router().backends();
      await().atMost(Duration.ofSeconds(5)).until(() -> backends.get(1).health() == Health.DOWN
          && backends.stream().filter(x -> x != backends.get(1))
              .allMatch(x -> x.health() == Health.UP));
      sendM1AllToA(gw);
      assertThat(gw.posts(1)).isEmpty();

      assertM2Hedged(gw);
    }
  }

  /**
   * The same with the other candidate routable but at its max_concurrent (held by a request for a
   * model only it serves): each request's hedge timer fires and finds no candidate with room, and
   * takes no budget for it.
   */
  @Test
  void aCandidateAtMaxConcurrentSpendsNoHedgeBudgetThatAnotherModelNeeds() {
    String yaml = """
        backends:
          - {url: "${SIM0}", name: a, models: ["m1"]}
          - {url: "${SIM1}", name: b, models: ["m1", "m0"], max_concurrent: 1}
          - {url: "${SIM2}", name: c, models: ["m2"]}
          - {url: "${SIM3}", name: d, models: ["m2"]}
        routing:
          hedge: {enabled: true, cold_start_race: false, threshold: 5ms, min_threshold: 1ms, max_parallel: 2,
                  budget_percent: 0}
        health_check: {enabled: false}
        outlier_detection: {enabled: false}
        """;
    SimulatorOptions slow = BASE.withTtft(Duration.ofMillis(60));
    try (TestGateway gw = TestGateway.start(yaml, slow.withName("a"), slow.withName("b").withTtft(Duration.ofSeconds(30)),
        slow.withName("c"), slow.withName("d"))) {
      io.vertx.core.http.HttpClientRequest holder = gw.client.open("/v1/chat/completions", TestClient.chat("m0", true));
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(1).size() == 1);
      try {
        sendM1AllToA(gw);
        assertThat(gw.posts(1)).as("b saw only the request holding it").hasSize(1);

        assertM2Hedged(gw);
      } finally {
        holder.connection().close();
      }
    }
  }

  /** More m1 requests than the budget's floor, each slower than the threshold: a alone serves each. */
  private static void sendM1AllToA(TestGateway gw) {
    for (int i = 0; i < 12; i++) {
      Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m1", true));
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-backend")).isEqualTo("a");
      assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("1");
    }
  }

  /** The m2 request still gets its hedge: c and d each see it, and no budget ran out. */
  private static void assertM2Hedged(TestGateway gw) {
    Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m2", true));
    assertThat(s.status()).isEqualTo(200);
    assertThat(s.headers().get("x-llmproxy-hedged")).isEqualTo("true");
    assertThat(gw.posts(2).size() + gw.posts(3).size()).as("c and d each saw the request").isEqualTo(2);
    Scrape m = Scrape.of(gw);
    assertThat(m.value("llmproxy_hedges_total", "model", "m2", "outcome", "sent")).isEqualTo(1);
    assertThat(m.value("llmproxy_hedges_total", "outcome", "budget_exhausted")).isZero();
  }

  // ---- acceptance 7: the opt-out header

  @Test
  void theOptOutHeaderStopsHedgingForThatRequest() {
    try (TestGateway gw = TestGateway.start(two("50ms"),
        BASE.withName("a").withTtft(Duration.ofMillis(400)), BASE.withName("b").withTtft(Duration.ofMillis(20)))) {
      Streamed off = gw.client.stream("/v1/chat/completions", STREAM, "x-llmproxy-hedge", "off");

      assertThat(off.status()).isEqualTo(200);
      assertThat(off.headers().get("x-llmproxy-backend")).isEqualTo("a");
      assertThat(off.headers().get("x-llmproxy-attempts")).isEqualTo("1");
      assertThat(off.headers().get("x-llmproxy-hedged")).isNull();
      assertThat(off.content()).isEqualTo(" Hello from a,");
      assertThat(single(gw.posts(0)).completed()).isTrue();
      assertThat(gw.posts(1)).as("b saw, with the opt-out").isEmpty();
      assertThat(Scrape.of(gw).value("llmproxy_hedges_total")).isZero();

      // The same request without the header is hedged.
      Streamed on = gw.client.stream("/v1/chat/completions", STREAM);
      assertThat(on.headers().get("x-llmproxy-backend")).isEqualTo("b");
      assertThat(on.headers().get("x-llmproxy-hedged")).isEqualTo("true");
      assertThat(gw.posts(0)).hasSize(2);
      assertThat(gw.posts(1)).hasSize(1);
      assertThat(Scrape.of(gw).value("llmproxy_hedges_total", "outcome", "sent")).isEqualTo(1);
    }
  }

  private static RequestRecord single(List<RequestRecord> records) {
    assertThat(records).as("requests the backend saw").hasSize(1);
    return records.get(0);
  }

  /**
   * The hedge reached its backend no sooner than the threshold after the client sent the request
   * (less 5 ms for the timers' rounding), and at most {@code atMostMs} after the primary reached its
   * own. The first bound is timed from the send, as the gateway's timer is, not from the primary's
   * arrival, which a connect and, in a fresh JVM, the simulator's first run can delay: under load a
   * hedge at 50 ms came 38 ms after the primary's arrival.
   */
  private static void assertHedgeTimed(long sentNanos, RequestRecord primary, RequestRecord hedge, long thresholdMs,
      long atMostMs) {
    assertThat((hedge.receivedAtNanos() - sentNanos) / MS).as("ms from the client's send to the hedge's arrival")
        .isGreaterThanOrEqualTo(thresholdMs - 5);
    assertThat((hedge.receivedAtNanos() - primary.receivedAtNanos()) / MS).as("ms from the primary's arrival to the hedge's")
        .isLessThanOrEqualTo(atMostMs);
  }
}
