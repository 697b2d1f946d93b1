package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.routing.Backend;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Issue 3, routing: {@code round_robin} takes each backend in turn and ignores the weights (SPEC §6.2). */
class RoundRobinTest {
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1);
  private static final Buffer BODY = Buffer.buffer("{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":1}");

  @Test
  void concurrentRequestsLandEvenlyWhateverTheWeights() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                weight: 5
              - url: "${SIM1}"
                weight: 3
              - url: "${SIM2}"
                weight: 1
            load_balance_strategy: round_robin
            health_check: {enabled: false}
            """, INSTANT, INSTANT, INSTANT)) {
      int total = 1_501;
      List<Future<Response>> wave = new ArrayList<>();
      int sent = 0;
      while (sent < total) {
        wave.clear();
        for (int i = 0; i < 16 && sent < total; i++, sent++) {
          wave.add(gw.client.sendAsync(HttpMethod.POST, "/v1/completions", BODY));
        }
        for (Future<Response> f : wave) {
          assertThat(TestGateway.await(f).status()).isEqualTo(200);
        }
      }
      int[] counts = {gw.posts(0).size(), gw.posts(1).size(), gw.posts(2).size()};
      assertThat(counts[0] + counts[1] + counts[2]).isEqualTo(total);
      for (int c : counts) {
        assertThat(c).as("requests per backend: %s", java.util.Arrays.toString(counts)).isBetween(500, 501);
      }
    }
  }

  @Test
  void sequentialRequestsRotateStrictlyAndTheStrategyMayBeSpelledWithDashes() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
                weight: 10
              - url: "${SIM1}"
                name: b
              - url: "${SIM2}"
                name: c
                weight: 2
            load_balance_strategy: round-robin
            health_check: {enabled: false}
            """, INSTANT.withName("a"), INSTANT.withName("b"), INSTANT.withName("c"))) {
      List<String> order = new ArrayList<>();
      for (int i = 0; i < 30; i++) {
        order.add(gw.client.send(HttpMethod.POST, "/v1/completions", BODY).header("x-llmproxy-backend"));
      }
      for (int i = 3; i < order.size(); i++) {
        assertThat(order.get(i)).as("request %d of %s", i, order).isEqualTo(order.get(i - 3));
      }
      assertThat(order.subList(0, 3)).containsExactlyInAnyOrder("a", "b", "c");
      assertThat(List.of(gw.posts(0).size(), gw.posts(1).size(), gw.posts(2).size())).containsExactly(10, 10, 10);
    }
  }

  /**
   * A backend that is down leaves the others an even split: the one after it in the rotation does not
   * also take its turns (the cursor counts over the eligible backends, not over all of them).
   */
  @Test
  void aBackendThatIsDownLeavesAnEvenSplitBetweenTheOthers() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: a
              - url: "${SIM1}"
                name: b
              - url: "${SIM2}"
                name: c
            load_balance_strategy: round_robin
            health_check: {interval: 50ms, timeout: 40ms, path: /health, healthy_threshold: 1, unhealthy_threshold: 1}
            """, INSTANT.withName("a"), INSTANT.withName("b").withHealthy(false), INSTANT.withName("c"))) {
      List<Backend> backends = gw.gateway.router().backends();
      await().atMost(Duration.ofSeconds(5)).until(() -> backends.get(0).health() == Backend.Health.UP
          && backends.get(1).health() == Backend.Health.DOWN && backends.get(2).health() == Backend.Health.UP);
      for (int i = 0; i < 300; i++) {
        assertThat(gw.client.send(HttpMethod.POST, "/v1/completions", BODY).status()).isEqualTo(200);
      }
      int[] counts = {gw.posts(0).size(), gw.posts(1).size(), gw.posts(2).size()};
      assertThat(counts[1]).as("the backend that is down").isZero();
      // Sequential requests over a stable set alternate exactly; 5 of slack for a health check that
      // flaps on a busy machine.
      assertThat(counts[0]).as("requests per backend: %s", java.util.Arrays.toString(counts)).isBetween(145, 155);
      assertThat(counts[2]).as("requests per backend: %s", java.util.Arrays.toString(counts)).isBetween(145, 155);
    }
  }
}
