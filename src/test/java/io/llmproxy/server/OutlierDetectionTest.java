package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.llmproxy.config.ConfigLoader;
import io.llmproxy.health.PassiveHealth;
import io.llmproxy.health.PassiveHealth.State;
import io.llmproxy.routing.Backend;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.Logs;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * Issue 5, passive health against simulated backends (SPEC §6.1 panic mode, §6.5, §7): ejection,
 * the half-open canary limit, the slow-start ramp, panic mode and a 429's retry-after, with what each
 * backend saw, the metrics, and one log line per change of state.
 */
class OutlierDetectionTest {
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1);
  private static final String COMPLETION = "{\"model\":\"m\",\"prompt\":\"x\"}";
  /** Retries go at once (to a backend not tried yet), so a failure costs the client no time. */
  private static final String RETRY = "  retry: {enabled: true, max_retries: 2, initial_wait: 1ms, max_wait: 5ms}\n";
  private static final long MS = 1_000_000L;

  private final Logger logger = (Logger) LoggerFactory.getLogger(Gateway.class);
  private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
  private Level levelBefore;

  @BeforeEach
  void captureLogs() {
    // Another test (the demo) may have set the levels from a config; the state changes log at INFO.
    levelBefore = logger.getLevel();
    logger.setLevel(Level.INFO);
    logs.start();
    logger.addAppender(logs);
  }

  @AfterEach
  void releaseLogs() {
    logger.detachAppender(logs);
    logger.setLevel(levelBefore);
  }

  /** The gateway's log lines about one backend's state, in order. */
  private List<String> stateLog(String backend) {
    synchronized (logs) {
      return Logs.snapshot(logs).stream().map(ILoggingEvent::getFormattedMessage)
          .filter(m -> m.startsWith("backend " + backend + " ")).toList();
    }
  }

  private static Backend backend(TestGateway gw, int i) {
    return gw.gateway.router().backends().get(i);
  }

  private static PassiveHealth.State state(TestGateway gw, int i) {
    return backend(gw, i).passive().state();
  }

  /** Sends sequential completions until backend {@code i} is ejected; all must succeed. */
  private static void sendUntilEjected(TestGateway gw, int i) {
    for (int n = 0; n < 50 && state(gw, i) != State.EJECTED; n++) {
      assertThat(gw.client.post("/v1/completions", COMPLETION).status()).isEqualTo(200);
    }
    assertThat(state(gw, i)).isEqualTo(State.EJECTED);
  }

  /**
   * A backend answering 500 to everything, among three: it sees exactly {@code consecutive_failures}
   * requests, then none while it cools down; every client request succeeds (the acceptance asks for
   * at least 99%), those that met the failing backend on their second attempt.
   */
  @Test
  void aBackendFailingEverythingIsEjectedAfterConsecutiveFailuresWhileClientsSucceed() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
              - url: "${SIM1}"
                name: b
              - url: "${SIM2}"
                name: c
            routing:
            """ + RETRY + """
            health_check: {enabled: false}
            outlier_detection: {consecutive_failures: 3, base_cooldown: 1m, max_cooldown: 2m}
            """, INSTANT.withName("a"), INSTANT.withName("b"), INSTANT.withName("c").withFail(1.0, 500))) {
      List<Response> responses = new ArrayList<>();
      // One at a time, so that the count the failing backend sees is exact: each of its failures is
      // reported before the next request is routed.
      for (int i = 0; i < 100; i++) {
        responses.add(gw.client.post("/v1/completions", COMPLETION));
      }
      assertThat(state(gw, 2)).isEqualTo(State.EJECTED);
      // Then 200 at once: none may reach the ejected backend.
      List<Future<Response>> burst = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        burst.add(gw.client.sendAsync(HttpMethod.POST, "/v1/completions", Buffer.buffer(COMPLETION)));
      }
      burst.forEach(f -> responses.add(TestGateway.await(f)));

      long ok = responses.stream().filter(r -> r.status() == 200).count();
      assertThat(ok).as("client requests that succeeded").isGreaterThanOrEqualTo(responses.size() * 99L / 100);
      assertThat(ok).as("every failure was retried on a healthy backend").isEqualTo(responses.size());
      assertThat(responses).filteredOn(r -> "2".equals(r.header("x-llmproxy-attempts"))).hasSize(3)
          .allSatisfy(r -> assertThat(r.header("x-llmproxy-backend")).isIn("a", "b"));
      assertThat(responses).noneMatch(r -> "c".equals(r.header("x-llmproxy-backend")));

      assertThat(gw.posts(2)).as("what the failing backend saw").hasSize(3)
          .allSatisfy(r -> assertThat(r.status()).isEqualTo(500));
      assertThat(gw.posts(0).size() + gw.posts(1).size()).isEqualTo(300);
      String scrape = gw.gateway.metrics().scrape();
      assertThat(scrape).contains(
          "llmproxy_cooldowns_total{backend=\"c\"} 1.0",
          "llmproxy_cooldowns_total{backend=\"a\"} 0.0",
          "llmproxy_cooldowns_total{backend=\"b\"} 0.0",
          "llmproxy_backend_state{backend=\"c\",state=\"ejected\"} 1.0",
          "llmproxy_backend_state{backend=\"c\",state=\"healthy\"} 0.0",
          "llmproxy_backend_state{backend=\"a\",state=\"healthy\"} 1.0",
          "llmproxy_backend_state{backend=\"a\",state=\"ejected\"} 0.0",
          "llmproxy_backend_state{backend=\"b\",state=\"healthy\"} 1.0");
      assertThat(stateLog("c")).singleElement().satisfies(m -> assertThat(m)
          .matches("backend c ejected for [0-9.ms]+ \\(3 consecutive failures \\(last: status_5xx\\); was healthy\\)"));
      assertThat(stateLog("a")).isEmpty();
      assertThat(stateLog("b")).isEmpty();
    }
  }

  /**
   * Half-open lets through at most {@code half_open_requests} (2) canaries at once. The ejected
   * backend recovers but is slow (800 ms); when its cooldown has run out, 20 streams arrive at once.
   * From the backend's own records: it had at most 2 requests in flight at any moment until
   * 2 canaries had completed (until then it was half-open, so all it got were canaries), and it
   * got exactly 2 before the first of them completed; the other requests went to the other backend.
   */
  @Test
  void halfOpenLetsThroughNoMoreThanHalfOpenRequestsAtOnce() {
    int halfOpen = 2;
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
              - url: "${SIM1}"
                name: b
            routing:
            """ + RETRY + """
            health_check: {enabled: false}
            outlier_detection: {consecutive_failures: 1, base_cooldown: 300ms, max_cooldown: 1s, half_open_requests: 2, slow_start: 0s}
            """, INSTANT.withName("a"), INSTANT.withName("b").withFail(1.0, 500))) {
      sendUntilEjected(gw, 1);
      int before = gw.posts(1).size();
      // Streams of one token with no gap: each is answered and ended in one go after the ttft, so
      // its last event's time is when the backend finished with it.
      gw.sim(1).options(INSTANT.withName("b").withTtft(Duration.ofMillis(800)));
      await().atMost(Duration.ofSeconds(2)).pollInterval(Duration.ofMillis(5)).until(() -> state(gw, 1) == State.HALF_OPEN);

      List<Future<Streamed>> burst = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        burst.add(gw.client.streamAsync("/v1/chat/completions", TestClient.chat("m", true)));
      }
      List<Streamed> done = burst.stream().map(TestGateway::await).toList();
      assertThat(done).allSatisfy(s -> {
        assertThat(s.status()).isEqualTo(200);
        assertThat(s.text()).endsWith("data: [DONE]\n\n");
      });

      List<RequestRecord> atB = gw.posts(1).subList(before, gw.posts(1).size());
      assertThat(atB).allSatisfy(r -> assertThat(r.completed()).isTrue());
      List<Long> ends = atB.stream().map(OutlierDetectionTest::endNanos).sorted().toList();
      long firstEnd = ends.get(0);
      long canariesDone = ends.get(Math.min(halfOpen, ends.size()) - 1);
      assertThat(atB).as("requests b received before its first canary completed")
          .filteredOn(r -> r.receivedAtNanos() < firstEnd).hasSize(halfOpen);
      List<RequestRecord> canaries = atB.stream().filter(r -> r.receivedAtNanos() < canariesDone).toList();
      assertThat(maxInFlight(canaries)).as("b's most requests in flight at once while half-open").isEqualTo(halfOpen);
      assertThat(gw.posts(0).stream().filter(r -> r.stream()).count()).isEqualTo(20 - atB.size());
      assertThat(state(gw, 1)).isEqualTo(State.HEALTHY); // slow_start 0: healthy at once

      // Back in rotation: b takes its share again.
      gw.sim(1).options(INSTANT.withName("b"));
      for (int i = 0; i < 10; i++) {
        assertThat(gw.client.post("/v1/completions", COMPLETION).status()).isEqualTo(200);
      }
      assertThat(gw.posts(1).size() - before - atB.size()).isBetween(4, 6);
      assertThat(stateLog("b")).hasSize(3);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_cooldowns_total{backend=\"b\"} 1.0");
    }
  }

  private static long endNanos(RequestRecord r) {
    long[] chunks = r.chunkSentAtNanos();
    return chunks[chunks.length - 1];
  }

  /** The most requests in flight at once, a request being in flight from its arrival to its last event. */
  private static int maxInFlight(List<RequestRecord> records) {
    record Edge(long at, int delta) {}
    List<Edge> edges = new ArrayList<>();
    for (RequestRecord r : records) {
      edges.add(new Edge(r.receivedAtNanos(), 1));
      edges.add(new Edge(endNanos(r), -1));
    }
    // At equal times an end counts before an arrival.
    edges.sort(Comparator.comparingLong(Edge::at).thenComparingInt(Edge::delta));
    int now = 0;
    int max = 0;
    for (Edge e : edges) {
      now += e.delta();
      max = Math.max(max, now);
    }
    return max;
  }

  /**
   * Halfway through slow start, the recovered backend gets 55% ± 15% of its weight's share.
   *
   * <p>What is compared: two backends of equal weight; b recovers (one canary) and ramps from 10%
   * to 100% of its weight over 4 s. Sequential requests keep coming; those that reached a backend
   * within ±10% of the ramp (±400 ms) around its midpoint (2 s after the canary's answer) are
   * counted per backend. There b's effective weight goes from 0.46 to 0.64, 0.55 at the midpoint.
   * We compare b's requests per unit of weight with a's: {@code (n_b / w_b) / (n_a / w_a)}, the
   * fraction of a full weight's share that b received, which must be within 0.40..0.70. (b's share of
   * all requests, about 0.55 / 1.55 = 35.5%, is that fraction normalised by the total weight; divided
   * by its full share of 50% it would be about 0.71, above the band for any weight: with two backends
   * a share cannot show the weight factor directly, a ratio of rates can.) The smooth weighted
   * round-robin is deterministic, so over hundreds of picks the ratio is the weights' average ratio
   * within a pick or two; a late request only moves its own count.
   */
  @Test
  void halfwayThroughSlowStartTheRecoveredBackendGetsAboutHalfItsWeightsShare() {
    long slowStartMs = 4000;
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
              - url: "${SIM1}"
                name: b
            routing:
            """ + RETRY + """
            health_check: {enabled: false}
            outlier_detection: {consecutive_failures: 1, base_cooldown: 200ms, max_cooldown: 1s, half_open_requests: 1, slow_start: 4s}
            """, INSTANT.withName("a").withRecordLimit(100_000),
        INSTANT.withName("b").withFail(1.0, 500).withRecordLimit(100_000))) {
      sendUntilEjected(gw, 1);
      gw.sim(1).options(INSTANT.withName("b").withRecordLimit(100_000));
      await().atMost(Duration.ofSeconds(2)).pollInterval(Duration.ofMillis(5)).until(() -> state(gw, 1) == State.HALF_OPEN);

      // The canary: b takes it at its next turn (within two requests); its answer starts slow start.
      int before = gw.posts(1).size();
      for (int n = 0; n < 4 && gw.posts(1).size() == before; n++) {
        assertThat(gw.client.post("/v1/completions", COMPLETION).status()).isEqualTo(200);
      }
      long rampStart = System.nanoTime(); // within a millisecond after b's state changed
      assertThat(gw.posts(1)).hasSize(before + 1);
      assertThat(state(gw, 1)).isEqualTo(State.SLOW_START);

      long mid = rampStart + slowStartMs * MS / 2;
      long from = mid - slowStartMs * MS / 10;
      long to = mid + slowStartMs * MS / 10;
      while (System.nanoTime() < to + 50 * MS) {
        assertThat(gw.client.post("/v1/completions", COMPLETION).status()).isEqualTo(200);
      }
      long early = count(gw.posts(1), rampStart, rampStart + 800 * MS);
      long earlyA = count(gw.posts(0), rampStart, rampStart + 800 * MS);
      long nb = count(gw.posts(1), from, to);
      long na = count(gw.posts(0), from, to);
      assertThat(na + nb).as("requests in the window around the midpoint").isGreaterThanOrEqualTo(50);
      double fraction = (double) nb / na; // equal weights: (nb / w) / (na / w)
      System.out.printf("slow start midpoint: a %d, b %d requests; b's fraction of a full weight's share %.3f,"
          + " its share %.3f (full share 0.5); first 20%% of the ramp: a %d, b %d%n",
          na, nb, fraction, (double) nb / (na + nb), earlyA, early);
      assertThat(fraction).as("b's requests per unit of weight over a's, around the ramp's midpoint")
          .isBetween(0.40, 0.70);
      // And the ramp rises: early on b got less (0.1 to 0.28 of its weight).
      assertThat((double) early / earlyA).isLessThan(fraction);

      await().atMost(Duration.ofMillis(slowStartMs)).pollInterval(Duration.ofMillis(20))
          .until(() -> state(gw, 1) == State.HEALTHY);
      assertThat(backend(gw, 1).effectiveWeight()).isEqualTo(1.0);

      // Each change of state logged once, in order.
      List<String> log = stateLog("b");
      assertThat(log).hasSize(4);
      assertThat(log.get(0)).matches("backend b ejected for [0-9.]+ms \\(1 consecutive failures \\(last: status_5xx\\); was healthy\\)");
      assertThat(log.subList(1, 4)).containsExactly(
          "backend b is half-open (cooldown over; was ejected)",
          "backend b is slow-start (1 canary requests in a row succeeded; was half_open)",
          "backend b is healthy (slow start over; was slow_start)");
      assertThat(stateLog("a")).isEmpty();
    }
  }

  private static long count(List<RequestRecord> records, long from, long to) {
    return records.stream().filter(r -> r.receivedAtNanos() >= from && r.receivedAtNanos() < to).count();
  }

  /**
   * With every backend ejected, requests are still tried (panic mode): the client gets the
   * backends' own 500s, never a 503 of the gateway's, and {@code llmproxy_panic_routed_total}
   * counts them. Once one backend serves again, requests succeed, first still in panic mode (both
   * cooling down), then through its half-open canary once its cooldown ends.
   */
  @Test
  void withEveryBackendEjectedRequestsAreStillTriedAndSucceedOnceOneRecovers() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
              - url: "${SIM1}"
                name: b
            routing:
            """ + RETRY + """
            health_check: {enabled: false}
            outlier_detection: {consecutive_failures: 1, base_cooldown: 2s, max_cooldown: 10s, half_open_requests: 1, slow_start: 0s}
            """, INSTANT.withName("a").withFail(1.0, 500), INSTANT.withName("b").withFail(1.0, 500))) {
      // First request: a fails and is ejected, then b, then the third attempt is in panic mode.
      Response first = gw.client.post("/v1/completions", COMPLETION);
      assertThat(state(gw, 0)).isEqualTo(State.EJECTED);
      assertThat(state(gw, 1)).isEqualTo(State.EJECTED);
      Response second = gw.client.post("/v1/completions", COMPLETION);
      for (Response r : List.of(first, second)) {
        assertThat(r.status()).as("the backends' own answer, not the gateway's 503").isEqualTo(500);
        assertThat(r.json().getJsonObject("error").getString("message")).startsWith("Simulated failure");
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("3");
      }
      assertThat(gw.posts(0).size() + gw.posts(1).size()).isEqualTo(6);
      assertThat(gw.posts(0)).hasSizeBetween(2, 4);
      String scrape = gw.gateway.metrics().scrape();
      assertThat(scrape).contains("llmproxy_panic_routed_total 2.0",
          // Failures in panic mode do not lengthen the cooldown.
          "llmproxy_cooldowns_total{backend=\"a\"} 1.0", "llmproxy_cooldowns_total{backend=\"b\"} 1.0",
          "llmproxy_backend_state{backend=\"a\",state=\"ejected\"} 1.0",
          "llmproxy_backend_state{backend=\"b\",state=\"ejected\"} 1.0");

      // a serves again; both still cool down, so requests go in panic mode, and succeed.
      gw.sim(0).options(INSTANT.withName("a"));
      for (int i = 0; i < 5; i++) {
        Response r = gw.client.post("/v1/completions", COMPLETION);
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("x-llmproxy-backend")).isEqualTo("a");
      }
      assertThat(backend(gw, 0).cooldownRemainingNanos()).as("still in its cooldown").isPositive();
      assertThat(backend(gw, 1).cooldownRemainingNanos()).as("still in its cooldown").isPositive();
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_panic_routed_total 7.0");

      // a's cooldown ends: its canary succeeds and requests are routed normally again.
      await().atMost(Duration.ofSeconds(3)).pollInterval(Duration.ofMillis(10))
          .until(() -> backend(gw, 0).cooldownRemainingNanos() == 0);
      List<Response> after = new ArrayList<>();
      for (int i = 0; i < 10; i++) {
        after.add(gw.client.post("/v1/completions", COMPLETION));
      }
      assertThat(after).allSatisfy(r -> {
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("x-llmproxy-backend")).isEqualTo("a");
      });
      assertThat(state(gw, 0)).isEqualTo(State.HEALTHY);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_panic_routed_total 7.0");
    }
  }

  /**
   * A 429 with {@code retry-after: 1} (what the simulator sends with its 429s) ejects the backend at
   * once, although {@code consecutive_failures} is 5, for exactly the retry-after: the base cooldown
   * is only 100 ms. The backend gets no traffic for that second, then its canary.
   */
  @Test
  void a429WithRetryAfterEjectsAtOnceForRetryAfter() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
              - url: "${SIM1}"
                name: b
            routing:
            """ + RETRY + """
            health_check: {enabled: false}
            outlier_detection: {consecutive_failures: 5, base_cooldown: 100ms, max_cooldown: 10s, half_open_requests: 1, slow_start: 0s}
            """, INSTANT.withName("a"), INSTANT.withName("b").withFail(1.0, 429))) {
      for (int n = 0; n < 4 && gw.posts(1).isEmpty(); n++) {
        Response r = gw.client.post("/v1/completions", COMPLETION);
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("x-llmproxy-backend")).isEqualTo("a");
      }
      assertThat(gw.posts(1)).singleElement().satisfies(r -> assertThat(r.status()).isEqualTo(429));
      assertThat(state(gw, 1)).isEqualTo(State.EJECTED);
      assertThat(backend(gw, 1).passive().currentCooldownNanos()).isEqualTo(TimeUnit.SECONDS.toNanos(1));
      assertThat(stateLog("b")).containsExactly("backend b ejected for 1s (429 with retry-after; was healthy)");

      gw.sim(1).options(INSTANT.withName("b"));
      long ejectedAt = gw.posts(1).get(0).receivedAtNanos();
      while (gw.posts(1).size() < 2 && System.nanoTime() - ejectedAt < 3_000 * MS) {
        Response r = gw.client.post("/v1/completions", COMPLETION);
        assertThat(r.status()).isEqualTo(200);
      }
      assertThat(gw.posts(1)).hasSize(2);
      long back = gw.posts(1).get(1).receivedAtNanos();
      long gapMs = (back - ejectedAt) / MS;
      // Not before the retry-after; soon after it, as requests keep coming (800 ms of slack).
      assertThat(gapMs).as("ms without traffic to b").isBetween(1000L, 1800L);
      assertThat(count(gw.posts(0), ejectedAt, back)).as("a took everything meanwhile").isGreaterThan(10);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_cooldowns_total{backend=\"b\"} 1.0",
          "llmproxy_retries_total{reason=\"status_429\"} 1.0");
    }
  }

  /**
   * A wedged engine: it sends its head and role chunk at once, then no token. Its timeouts count one
   * after another (the head is not an answer), so it is ejected at consecutive_failures.
   */
  @Test
  void aBackendThatSendsItsHeadAndThenNothingIsEjected() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: wedged
              - url: "${SIM1}"
                name: fine
            load_balance_strategy: round_robin
            routing:
              timeouts: {first_token: 300ms, idle: 200ms}
            """ + RETRY + """
            health_check: {enabled: false}
            outlier_detection: {consecutive_failures: 2, failure_rate: 1.0, min_requests: 1000, base_cooldown: 1m, max_cooldown: 2m}
            """, INSTANT.withName("wedged").withEarlyHeaders(true).withTtft(Duration.ofSeconds(30)),
        INSTANT.withName("fine"))) {
      for (int i = 0; i < 6 && state(gw, 0) != State.EJECTED; i++) {
        assertThat(gw.client.stream("/v1/chat/completions", TestClient.chat("m", true)).status()).isEqualTo(200);
      }
      assertThat(state(gw, 0)).isEqualTo(State.EJECTED);
      assertThat(gw.posts(0)).as("what the wedged backend saw").hasSize(2);
    }
  }

  /**
   * A backend that takes a non-streaming request and never answers (no head at all) has no
   * first-token timeout to fail: the total timeout is its timeout, and counts against it.
   */
  @Test
  void aBackendThatNeverAnswersIsEjectedByTheTotalTimeout() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: hung
              - url: "${SIM1}"
                name: fine
            load_balance_strategy: round_robin
            routing:
              timeouts: {total: 300ms}
            health_check: {enabled: false}
            outlier_detection: {consecutive_failures: 2, base_cooldown: 1m, max_cooldown: 2m}
            """, INSTANT.withName("hung").withHangRate(1.0), INSTANT.withName("fine"))) {
      for (int i = 0; i < 6 && state(gw, 0) != State.EJECTED; i++) {
        gw.client.post("/v1/completions", COMPLETION);
      }
      assertThat(state(gw, 0)).isEqualTo(State.EJECTED);
      for (int i = 0; i < 5; i++) {
        Response r = gw.client.post("/v1/completions", COMPLETION);
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("x-llmproxy-backend")).isEqualTo("fine");
      }
    }
  }

  /** A reload that changes outlier_detection keeps each backend's state: an ejected one stays out. */
  @Test
  void anEjectedBackendStaysOutWhenAReloadChangesOutlierDetection() throws Exception {
    String yaml = """
        backends:
          - {url: "%s", name: a}
          - {url: "%s", name: c}
        routing:
        """ + RETRY + """
        health_check: {enabled: false}
        outlier_detection: {consecutive_failures: 2, base_cooldown: 1m, max_cooldown: 2m, slow_start: %s}
        """;
    try (TestGateway gw = TestGateway.start(yaml.formatted("${SIM0}", "${SIM1}", "30s"),
        INSTANT.withName("a"), INSTANT.withName("c").withFail(1.0, 500))) {
      sendUntilEjected(gw, 1);
      long cooldown = backend(gw, 1).passive().cooldownRemainingNanos();
      gw.gateway.reload(ConfigLoader.parse(yaml.formatted(gw.sim(0).url(), gw.sim(1).url(), "10s"), name -> null));
      assertThat(state(gw, 1)).isEqualTo(State.EJECTED);
      assertThat(backend(gw, 1).passive().cooldownRemainingNanos()).isPositive().isLessThanOrEqualTo(cooldown);
      int seen = gw.posts(1).size();
      for (int i = 0; i < 10; i++) {
        assertThat(gw.client.post("/v1/completions", COMPLETION).status()).isEqualTo(200);
      }
      assertThat(gw.posts(1)).as("the ejected backend got nothing after the reload").hasSize(seen);
    }
  }
}
