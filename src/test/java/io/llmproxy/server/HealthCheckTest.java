package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Backend.Health;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Acceptance 5: active health checks take a backend out and back in; /ready follows. */
class HealthCheckTest {
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1);
  private static final long INTERVAL_MS = 100;

  @Test
  void backendGoesOutWithinIntervalTimesThresholdAndComesBack() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
              - url: "${SIM1}"
                name: b
            health_check: {interval: 100ms, timeout: 1s, path: /health, healthy_threshold: 2, unhealthy_threshold: 3}
            """, INSTANT.withName("a"), INSTANT.withName("b"))) {
      Backend a = gw.gateway.router().backends().get(0);
      await().atMost(Duration.ofSeconds(5)).until(() -> a.health() == Health.UP);
      assertThat(gw.client.get("/ready").status()).isEqualTo(200);

      gw.sim(0).options(gw.sim(0).options().withHealthy(false));
      long start = System.nanoTime();
      // interval x unhealthy_threshold, plus one interval for the check already scheduled, plus slack.
      await().atMost(Duration.ofMillis(INTERVAL_MS * 4 + 250)).until(() -> a.health() == Health.DOWN);
      long outMs = (System.nanoTime() - start) / 1_000_000;
      assertThat(outMs).isGreaterThanOrEqualTo(INTERVAL_MS * 2); // not before the threshold was reached
      Set<String> used = new HashSet<>();
      for (int i = 0; i < 10; i++) {
        used.add(gw.client.post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}").header("x-llmproxy-backend"));
      }
      assertThat(used).containsExactly("b");
      assertThat(gw.client.get("/ready").status()).isEqualTo(200);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_backend_up{backend=\"a\"} 0.0");

      gw.sim(0).options(gw.sim(0).options().withHealthy(true));
      await().atMost(Duration.ofMillis(INTERVAL_MS * 3 + 250)).until(() -> a.health() == Health.UP);
      used.clear();
      for (int i = 0; i < 10; i++) {
        used.add(gw.client.post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}").header("x-llmproxy-backend"));
      }
      assertThat(used).containsExactlyInAnyOrder("a", "b");
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
}
