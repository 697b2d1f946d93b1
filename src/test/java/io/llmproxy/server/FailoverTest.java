package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.bench.BenchResult;
import io.llmproxy.bench.BenchSettings;
import io.llmproxy.bench.LoadGenerator;
import io.llmproxy.health.PassiveHealth.State;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Backend.Health;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Issue 5, failover under load: 3 backends, 200 requests/s non-streaming (open loop, evenly spaced)
 * for 20 s. Backend c is stopped after 5 s and restarted on its port after 12 s. No client sees an
 * error (requests caught by the stop are retried on the others), and c is back in rotation within
 * {@code health_check.interval × healthy_threshold} plus its half-open time after its restart.
 */
class FailoverTest {
  private static final long MS = 1_000_000L;
  private static final int RATE = 200;
  private static final long DURATION_MS = 20_000;
  private static final long STOP_AT_MS = 5_000;
  private static final long RESTART_AT_MS = 12_000;
  private static final int BACKENDS = 3;

  // health_check and outlier_detection, as configured below
  private static final long INTERVAL_MS = 500;
  private static final int HEALTHY_THRESHOLD = 2;
  private static final int HALF_OPEN_REQUESTS = 3;

  /** Each response takes 10 + 3 × 2 = 16 ms. */
  private static final SimulatorOptions BACKEND = SimulatorOptions.defaults().withTtft(Duration.ofMillis(10))
      .withItl(Duration.ofMillis(2)).withTokens(4).withRecordLimit(20_000);
  private static final long BACKEND_MS = 16;

  /**
   * The half-open time: c, one of three equal backends under smooth weighted round-robin, gets every
   * third request, 3 / 200 s apart, so its {@code half_open_requests} canaries have all arrived
   * within 3 × 15 ms and have answered 16 ms after the last one.
   */
  private static final long HALF_OPEN_MS = HALF_OPEN_REQUESTS * (1000L * BACKENDS / RATE) + BACKEND_MS;
  /**
   * Scheduling slack on a busy two-core machine: probe round trips on loopback, timers firing late,
   * the 5 ms polling below.
   */
  private static final long MARGIN_MS = 250;

  @Test
  void failoverUnderLoadHasNoClientErrorsAndTheRestartedBackendIsBackInRotationInTime() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
              - url: "${SIM1}"
                name: b
              - url: "${SIM2}"
                name: c
            routing:
              retry: {enabled: true, max_retries: 2, initial_wait: 1ms, max_wait: 10ms}
              timeouts: {connect: 500ms}
            health_check: {interval: 500ms, timeout: 300ms, healthy_threshold: 2, unhealthy_threshold: 2}
            outlier_detection: {consecutive_failures: 3, base_cooldown: 1s, max_cooldown: 4s, half_open_requests: 3, slow_start: 2s}
            """, BACKEND.withName("a"), BACKEND.withName("b"), BACKEND.withName("c"))) {
      Backend c = gw.gateway.router().backends().get(2);
      Simulator oldC = gw.sim(2);
      int port = oldC.port();
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.router().backends().stream()
          .allMatch(b -> b.health() == Health.UP));

      Vertx loadVertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
      try {
        BenchSettings settings = BenchSettings.closedLoop(URI.create(gw.url()), false, 64, Duration.ofMillis(DURATION_MS))
            .withRate(RATE, false, 1000);
        long t0 = System.nanoTime();
        Future<BenchResult> run = new LoadGenerator(loadVertx, settings, 1).run();

        AtomicLong stoppedAt = new AtomicLong();
        AtomicLong restartedAt = new AtomicLong();
        AtomicReference<Simulator> newC = new AtomicReference<>();
        AtomicBoolean sawDown = new AtomicBoolean();
        AtomicBoolean sawEjected = new AtomicBoolean();
        gw.vertx.setTimer(STOP_AT_MS, id -> oldC.close().onComplete(v -> stoppedAt.set(System.nanoTime())));
        gw.vertx.setTimer(RESTART_AT_MS, id -> Simulator.start(gw.vertx, BACKEND.withName("c").withPort(port))
            .onSuccess(s -> {
              restartedAt.set(System.nanoTime());
              newC.set(s);
            }));

        // While c is away: out by its health check, and ejected by its failed requests.
        await().atMost(Duration.ofMillis(RESTART_AT_MS + 3_000)).pollInterval(Duration.ofMillis(5)).until(() -> {
          if (stoppedAt.get() != 0 && restartedAt.get() == 0) {
            sawDown.compareAndSet(false, c.health() == Health.DOWN);
            sawEjected.compareAndSet(false, c.passive().state() == State.EJECTED);
          }
          return newC.get() != null;
        });
        assertThat(sawDown).as("c went down by its health checks").isTrue();
        assertThat(sawEjected).as("c was ejected by its failures").isTrue();
        long restarted = restartedAt.get();
        long boundMs = INTERVAL_MS * HEALTHY_THRESHOLD + HALF_OPEN_MS;
        // Back in rotation: up by its health checks, and its canaries passed (slow start or healthy).
        await().atMost(Duration.ofMillis(boundMs + MARGIN_MS + 2_000)).pollDelay(Duration.ZERO)
            .pollInterval(Duration.ofMillis(5))
            .until(() -> c.health() == Health.UP && Stream.of(State.SLOW_START, State.HEALTHY)
                .anyMatch(s -> s == c.passive().state()));
        long backMs = (System.nanoTime() - restarted) / MS;
        long firstServedMs = (newC.get().requests().stream().filter(r -> r.method().equals("POST"))
            .mapToLong(RequestRecord::receivedAtNanos).min().orElseThrow() - restarted) / MS;

        BenchResult r = TestGateway.await(run);
        long endMs = (System.nanoTime() - t0) / MS;
        double p99 = BenchResult.ms(r.latencyMicros(), 99);
        List<RequestRecord> served = Stream.of(gw.posts(0), gw.posts(1), oldC.requests(), newC.get().requests())
            .flatMap(List::stream)
            .filter(rec -> rec.method().equals("POST") && rec.status() == 200 && rec.completed()).toList();
        long newCServed = newC.get().requests().stream().filter(rec -> rec.method().equals("POST") && rec.completed()).count();
        String scrape = gw.gateway.metrics().scrape();
        System.out.printf("failover under load: %d requests in %.1f s (%d ms in all), %d errors %s; latency p50 %.1f ms,"
                + " p99 %.1f ms, max %.1f ms; c stopped at %.1f s, restarted at %.1f s; first request to the restarted c"
                + " %d ms after its restart, back in rotation after %d ms (bound %d ms + %d ms margin); the restarted c"
                + " served %d; c's cooldowns %s%n",
            r.requests(), r.seconds(), endMs, r.errors(), r.errorsByKind(), BenchResult.ms(r.latencyMicros(), 50), p99,
            r.latencyMicros().getMaxValue() / 1000.0, (stoppedAt.get() - t0) / 1e9, (restarted - t0) / 1e9,
            firstServedMs, backMs, boundMs, MARGIN_MS, newCServed,
            scrape.lines().filter(l -> l.startsWith("llmproxy_cooldowns_total{backend=\"c\"}")).findFirst().orElse("?"));

        assertThat(r.errors()).as("client-visible errors: %s", r.errorsByKind()).isZero();
        assertThat(r.requests()).isBetween(RATE * DURATION_MS / 1000 - 100, RATE * DURATION_MS / 1000);
        // Each client request was answered by exactly one backend.
        assertThat(served).hasSize((int) r.requests());
        assertThat(backMs).as("ms from c's restart to back in rotation (interval × healthy_threshold + half-open time)")
            .isLessThanOrEqualTo(boundMs + MARGIN_MS);
        assertThat(firstServedMs).isLessThanOrEqualTo(backMs);
        assertThat(newCServed).as("the restarted c took its share again").isGreaterThan(200);
        assertThat(scrape).contains("llmproxy_backend_state{backend=\"c\",state=\"down\"} 0.0");
        assertThat(p99).isLessThan(1000.0);
      } finally {
        TestGateway.await(loadVertx.close());
      }
    }
  }
}
