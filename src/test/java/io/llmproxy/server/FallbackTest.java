package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Issue 3, routing: {@code routing.fallback} gives the order of the retries after a primary (SPEC
 * §6.3). Backend a (weight 100) is always the balancer's first pick; b is listed before c, so without
 * the chain a retry would go to b first (equal weights, first in the list wins the tie), while the
 * rule {@code a -> [c, b]} sends it to c first, then b.
 */
class FallbackTest {
  private static final SimulatorOptions FAST =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(2);

  private static final String CHAIN = """
      backends:
        - url: "${A}"
          name: a
          weight: 100
        - url: "${SIM0}"
          name: b
        - url: "${SIM1}"
          name: c
      routing:
        retry: {enabled: true, max_retries: 2, initial_wait: 1ms, max_wait: 5ms}
        fallback:
          - primary: a
            fallback: [c, b]
            models: ["llama*"]
      health_check: {enabled: false}
      # The primary fails on purpose every time: keep it from being ejected, to see the chain each time.
      outlier_detection: {enabled: false}
      """;

  private static int closedPort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  @Test
  void refusedPrimaryGoesToTheFirstFallbackThenTheSecond() throws IOException {
    try (TestGateway gw = TestGateway.start(CHAIN, Map.of("A", "http://127.0.0.1:" + closedPort()),
        FAST.withName("b"), FAST.withName("c"))) {
      // c answers: every retry lands on c, none on b (without the chain they would alternate).
      for (int i = 0; i < 6; i++) {
        Response r = gw.client.post("/v1/chat/completions", TestClient.chat("llama-3", false));
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("x-llmproxy-backend")).isEqualTo("c");
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      }
      assertThat(gw.posts(1)).hasSize(6);
      assertThat(gw.posts(0)).isEmpty();

      // c fails too: then b, the second in the chain.
      gw.sim(1).options(gw.sim(1).options().withFail(1.0, 503));
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("llama-3", false));
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("3");
      RequestRecord atC = gw.posts(1).get(6);
      RequestRecord atB = gw.posts(0).get(0);
      assertThat(atC.status()).isEqualTo(503);
      assertThat(atB.completed()).isTrue();
      assertThat(atB.receivedAtNanos()).isGreaterThan(atC.receivedAtNanos());
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_retries_total{reason=\"connect_error\"} 7.0");
    }
  }

  @Test
  void primaryAnswering503GoesDownTheChainInOrderAndTheRuleMayNameBackendsByUrl() {
    // The rule names its backends by URL, as SPEC §3 writes it.
    String yaml = CHAIN.replace("${A}", "${SIM2}").replace("primary: a", "primary: \"${SIM2}\"")
        .replace("fallback: [c, b]", "fallback: [\"${SIM1}\", \"${SIM0}\"]");
    try (TestGateway gw = TestGateway.start(yaml, FAST.withName("b"), FAST.withName("c").withFail(1.0, 503),
        FAST.withName("a").withFail(1.0, 503))) {
      for (int i = 0; i < 3; i++) {
        Response r = gw.client.post("/v1/chat/completions", TestClient.chat("llama-3", i % 2 == 0));
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("3");
      }
      assertThat(gw.posts(2)).hasSize(3).allSatisfy(rec -> assertThat(rec.status()).isEqualTo(503));
      assertThat(gw.posts(1)).hasSize(3).allSatisfy(rec -> assertThat(rec.status()).isEqualTo(503));
      assertThat(gw.posts(0)).hasSize(3).allSatisfy(rec -> assertThat(rec.completed()).isTrue());
      for (int i = 0; i < 3; i++) {
        long a = gw.posts(2).get(i).receivedAtNanos();
        long c = gw.posts(1).get(i).receivedAtNanos();
        long b = gw.posts(0).get(i).receivedAtNanos();
        assertThat(a).as("request %d: a, then c, then b", i).isLessThan(c);
        assertThat(c).as("request %d: a, then c, then b", i).isLessThan(b);
      }
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_retries_total{reason=\"status_5xx\"} 6.0");
    }
  }

  @Test
  void aRuleWithModelsAppliesOnlyToThoseModels() throws IOException {
    try (TestGateway gw = TestGateway.start(CHAIN, Map.of("A", "http://127.0.0.1:" + closedPort()),
        FAST.withName("b"), FAST.withName("c"))) {
      // "mistral" is not covered by the rule: the retries follow the balancer, which alternates
      // between b and c.
      for (int i = 0; i < 4; i++) {
        Response r = gw.client.post("/v1/chat/completions", TestClient.chat("mistral", false));
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      }
      assertThat(gw.posts(0)).hasSize(2);
      assertThat(gw.posts(1)).hasSize(2);
      // "llama-3" is covered: c.
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("llama-3", false))
          .header("x-llmproxy-backend")).isEqualTo("c");
      assertThat(gw.posts(1)).hasSize(3);
      assertThat(gw.posts(0)).hasSize(2);
    }
  }
}
