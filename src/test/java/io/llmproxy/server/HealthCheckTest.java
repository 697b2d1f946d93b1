package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Backend.Health;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import org.awaitility.core.ConditionFactory;
import org.junit.jupiter.api.Test;

/**
 * Acceptance 5: active health checks take a backend out and back in; /ready follows. Probes are to
 * run at a fixed rate: one every {@code interval} however long the previous one took (a tick is
 * skipped while one is still in flight). So a backend that starts failing is out within
 * {@code interval x unhealthy_threshold} plus, at most, the last probe's timeout, whether its checks
 * fail fast or hang.
 */
class HealthCheckTest {
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1);
  private static final long INTERVAL_MS = 100;
  /** The probe timeout: below the interval, so that no tick is skipped. */
  private static final long TIMEOUT_MS = 80;
  private static final int HEALTHY_THRESHOLD = 2;
  private static final int UNHEALTHY_THRESHOLD = 3;
  /**
   * Scheduling margin on top of interval x threshold + one probe timeout: 50 ms, for a timer that
   * fires late on a busy two-core machine, the probe's own round trip on loopback, and the 5 ms
   * polling below.
   */
  private static final long MARGIN_MS = 50;

  private static ConditionFactory within(long ms) {
    return await().atMost(Duration.ofMillis(ms)).pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(5));
  }

  @Test
  void backendGoesOutWithinIntervalTimesThresholdAndComesBack() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
              - url: "${SIM1}"
                name: b
            health_check: {interval: 100ms, timeout: 80ms, path: /health, healthy_threshold: 2, unhealthy_threshold: 3}
            """, INSTANT.withName("a"), INSTANT.withName("b"))) {
      Backend a = gw.gateway.router().backends().get(0);
      await().atMost(Duration.ofSeconds(5)).until(() -> a.health() == Health.UP);
      assertThat(gw.client.get("/ready").status()).isEqualTo(200);

      gw.sim(0).options(gw.sim(0).options().withHealthy(false));
      long start = System.nanoTime();
      // The first failing probe starts within one interval, the threshold-th one (threshold - 1)
      // intervals later, and ends within its timeout.
      within(INTERVAL_MS * UNHEALTHY_THRESHOLD + TIMEOUT_MS + MARGIN_MS).until(() -> a.health() == Health.DOWN);
      long outMs = (System.nanoTime() - start) / 1_000_000;
      // Not before the threshold was reached: threshold - 1 intervals between the first failing probe
      // and the last, less 20 ms for a first tick that fired late.
      assertThat(outMs).isGreaterThanOrEqualTo(INTERVAL_MS * (UNHEALTHY_THRESHOLD - 1) - 20);
      Set<String> used = new HashSet<>();
      for (int i = 0; i < 10; i++) {
        used.add(gw.client.post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}").header("x-llmproxy-backend"));
      }
      assertThat(used).containsExactly("b");
      assertThat(gw.client.get("/ready").status()).isEqualTo(200);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_backend_up{backend=\"a\"} 0.0");

      gw.sim(0).options(gw.sim(0).options().withHealthy(true));
      within(INTERVAL_MS * HEALTHY_THRESHOLD + TIMEOUT_MS + MARGIN_MS).until(() -> a.health() == Health.UP);
      used.clear();
      for (int i = 0; i < 10; i++) {
        used.add(gw.client.post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}").header("x-llmproxy-backend"));
      }
      assertThat(used).containsExactlyInAnyOrder("a", "b");
    }
  }

  /**
   * A backend whose {@code GET /health} answers 200, or, once told to hang, never answers; it records
   * when each health check arrived and when its connection was closed. Inference requests get a
   * small JSON 200.
   */
  private static final class HangingHealthBackend implements AutoCloseable {
    /** One health check as the backend saw it. */
    static final class Check {
      final long arrivedNanos = System.nanoTime();
      final boolean hung;
      volatile long closedNanos;

      Check(boolean hung) {
        this.hung = hung;
      }
    }

    private final HttpServer server;
    final List<Check> checks = new CopyOnWriteArrayList<>();
    volatile boolean hang;

    HangingHealthBackend(Vertx vertx) {
      server = vertx.createHttpServer();
      server.requestHandler(req -> {
        if (req.method() == HttpMethod.GET && req.path().equals("/health")) {
          Check c = new Check(hang);
          checks.add(c);
          req.response().closeHandler(v -> c.closedNanos = System.nanoTime());
          if (!c.hung) {
            req.response().end("{\"status\":\"ok\"}");
          }
        } else {
          req.body().onSuccess(b -> req.response().putHeader("content-type", "application/json").end("{\"ok\":true}"));
        }
      });
      TestGateway.await(server.listen(0, "127.0.0.1"));
    }

    String url() {
      return "http://127.0.0.1:" + server.actualPort();
    }

    List<Check> hung() {
      return checks.stream().filter(c -> c.hung).toList();
    }

    @Override
    public void close() {
      TestGateway.await(server.close());
    }
  }

  @Test
  void backendWhoseHealthCheckHangsGoesOutWithinIntervalTimesThresholdPlusOneTimeout() {
    Vertx vertx = Vertx.vertx();
    try (HangingHealthBackend hanging = new HangingHealthBackend(vertx);
        TestGateway gw = TestGateway.start("""
            backends:
              - url: "${HANGING}"
                name: a
              - url: "${SIM0}"
                name: b
            health_check: {interval: 100ms, timeout: 80ms, path: /health, healthy_threshold: 2, unhealthy_threshold: 3}
            """, Map.of("HANGING", hanging.url()), INSTANT.withName("b"))) {
      Backend a = gw.gateway.router().backends().get(0);
      await().atMost(Duration.ofSeconds(5)).until(() -> a.health() == Health.UP);

      hanging.hang = true;
      long start = System.nanoTime();
      // The threshold-th hung probe starts at most interval x threshold after this, and fails one
      // timeout later. Probes that waited for the previous one to time out would take
      // (interval + timeout) per failure instead.
      within(INTERVAL_MS * UNHEALTHY_THRESHOLD + TIMEOUT_MS + MARGIN_MS).until(() -> a.health() == Health.DOWN);
      long outMs = (System.nanoTime() - start) / 1_000_000;
      assertThat(outMs).isGreaterThanOrEqualTo(INTERVAL_MS * (UNHEALTHY_THRESHOLD - 1) + TIMEOUT_MS - 20);

      // What the backend saw: hung checks one interval apart, not one interval after the previous
      // timed out, each abandoned (its connection closed) after one timeout.
      within(TIMEOUT_MS + MARGIN_MS).until(() -> hanging.hung().size() >= UNHEALTHY_THRESHOLD
          && hanging.hung().stream().limit(UNHEALTHY_THRESHOLD).allMatch(c -> c.closedNanos != 0));
      List<HangingHealthBackend.Check> hung = hanging.hung().subList(0, UNHEALTHY_THRESHOLD);
      for (int i = 1; i < hung.size(); i++) {
        long gapMs = (hung.get(i).arrivedNanos - hung.get(i - 1).arrivedNanos) / 1_000_000;
        assertThat(gapMs).as("ms between hung checks %d and %d", i - 1, i)
            .isBetween(INTERVAL_MS - 20, INTERVAL_MS + MARGIN_MS);
      }
      for (HangingHealthBackend.Check c : hung) {
        assertThat((c.closedNanos - c.arrivedNanos) / 1_000_000).as("ms until a hung check was given up")
            .isBetween(TIMEOUT_MS - 10, TIMEOUT_MS + MARGIN_MS);
      }
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_backend_up{backend=\"a\"} 0.0");
      Set<String> used = new HashSet<>();
      for (int i = 0; i < 10; i++) {
        used.add(gw.client.post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}").header("x-llmproxy-backend"));
      }
      assertThat(used).containsExactly("b");
      assertThat(gw.client.get("/ready").status()).isEqualTo(200);

      hanging.hang = false;
      start = System.nanoTime();
      within(INTERVAL_MS * HEALTHY_THRESHOLD + TIMEOUT_MS + MARGIN_MS).until(() -> a.health() == Health.UP);
      assertThat((System.nanoTime() - start) / 1_000_000).isGreaterThanOrEqualTo(INTERVAL_MS * (HEALTHY_THRESHOLD - 1) - 20);
      assertThat(gw.client.post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}").status()).isEqualTo(200);
    } finally {
      TestGateway.await(vertx.close());
    }
  }

  @Test
  void readyIs503WhenEveryBackendIsDownButRequestsAreStillTried() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            health_check: {interval: 50ms, timeout: 1s, unhealthy_threshold: 1}
            """, INSTANT.withHealthy(false))) {
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.router().backends().get(0).health() == Health.DOWN);
      TestClient.Response ready = gw.client.get("/ready");
      assertThat(ready.status()).isEqualTo(503);
      assertThat(ready.json().getString("status")).isEqualTo("no_healthy_backend");
      assertThat(gw.client.get("/health").status()).isEqualTo(200);
      // Panic mode: with no healthy candidate, the backend is tried anyway (and here it can serve).
      assertThat(gw.client.post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}").status()).isEqualTo(200);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_panic_routed_total 1.0");
    }
  }

  /**
   * A backend behind an auth header of its own ({@code backends[].headers}, as Azure's api-key):
   * its health checks and model list carry the header as its requests do, so it is up and its models
   * are listed.
   */
  @Test
  void probesCarryTheBackendsOwnHeaders() {
    Vertx vertx = Vertx.vertx();
    try {
      HttpServer guarded = vertx.createHttpServer().requestHandler(req -> {
        if (!"s3cret".equals(req.getHeader("x-auth"))) {
          req.response().setStatusCode(401).end();
        } else if (req.path().equals("/v1/models")) {
          req.response().putHeader("content-type", "application/json")
              .end("{\"object\":\"list\",\"data\":[{\"id\":\"guarded-model\",\"object\":\"model\"}]}");
        } else {
          req.response().end("ok");
        }
      });
      int port = TestGateway.await(guarded.listen(0, "127.0.0.1")).actualPort();
      try (TestGateway gw = TestGateway.start("""
              backends:
                - url: "http://127.0.0.1:%d"
                  name: guarded
                  headers: {X-Auth: s3cret}
              health_check: {interval: 100ms, timeout: 80ms, path: /health, healthy_threshold: 1, unhealthy_threshold: 1}
              """.formatted(port))) {
        Backend b = gw.gateway.router().backends().get(0);
        await().atMost(Duration.ofSeconds(5)).until(() -> b.health() == Health.UP);
        await().atMost(Duration.ofSeconds(5)).until(() -> gw.client.get("/v1/models").text().contains("guarded-model"));
        assertThat(gw.client.get("/ready").status()).isEqualTo(200);
      }
    } finally {
      TestGateway.await(vertx.close());
    }
  }
}
