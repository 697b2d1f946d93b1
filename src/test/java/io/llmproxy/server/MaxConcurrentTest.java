package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.routing.Backend;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.http.HttpClientRequest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Issue 3, routing: a backend's {@code max_concurrent} caps its in-flight requests. Above the cap a
 * request goes to another candidate; when every candidate is at its cap the gateway answers 503
 * {@code no_healthy_backend} itself (Dispatch.launch) and the backend never sees the request.
 */
class MaxConcurrentTest {
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1);
  private static final SimulatorOptions SLOW = INSTANT.withTtft(Duration.ofSeconds(60));
  private static final String COMPLETION = "{\"model\":\"m\",\"prompt\":\"x\"}";

  @Test
  void aThirdConcurrentRequestGoesToTheOtherBackend() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: capped
                weight: 100
                max_concurrent: 2
              - url: "${SIM1}"
                name: other
            health_check: {enabled: false}
            """, SLOW.withName("capped"), INSTANT.withName("other"))) {
      Backend capped = gw.gateway.router().backends().get(0);
      List<HttpClientRequest> open = new ArrayList<>();
      // Weight 100: the balancer prefers "capped" for both.
      for (int i = 1; i <= 2; i++) {
        open.add(gw.client.open("/v1/completions", COMPLETION));
        int n = i;
        await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == n);
      }
      assertThat(capped.inflight()).isEqualTo(2);

      for (int i = 0; i < 3; i++) {
        Response r = gw.client.post("/v1/completions", COMPLETION);
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("x-llmproxy-backend")).isEqualTo("other");
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("1");
      }
      assertThat(gw.posts(0)).hasSize(2);
      assertThat(gw.posts(1)).hasSize(3);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_backend_inflight{backend=\"capped\"} 2.0");

      // A slot comes free: the next request goes to "capped" again.
      open.remove(0).connection().close();
      await().atMost(Duration.ofSeconds(5)).until(() -> capped.inflight() == 1);
      open.add(gw.client.open("/v1/completions", COMPLETION));
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 3);
      assertThat(capped.inflight()).isEqualTo(2);
      open.forEach(r -> r.connection().close());
    }
  }

  @Test
  void whenEveryBackendIsAtItsCapTheGatewayAnswers503() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: capped
                max_concurrent: 2
            health_check: {enabled: false}
            """, SLOW.withName("capped"))) {
      Backend capped = gw.gateway.router().backends().get(0);
      List<HttpClientRequest> open = new ArrayList<>();
      for (int i = 1; i <= 2; i++) {
        open.add(gw.client.open("/v1/completions", COMPLETION));
        int n = i;
        await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == n);
      }

      Response r = gw.client.post("/v1/completions", COMPLETION);
      assertThat(r.status()).isEqualTo(503);
      assertThat(r.header("content-type")).isEqualTo("application/json");
      assertThat(r.header("x-llmproxy-attempts")).isNull();
      assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("no_healthy_backend");
      assertThat(r.json().getJsonObject("error").getString("type")).isEqualTo("server_error");
      assertThat(r.json().getJsonObject("error").getString("message")).contains("max_concurrent");
      Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m", true));
      assertThat(s.status()).isEqualTo(503);
      assertThat(s.text()).contains("\"code\":\"no_healthy_backend\"");
      assertThat(gw.posts(0)).as("the backend never saw the refused requests").hasSize(2);
      assertThat(capped.inflight()).isEqualTo(2);

      // One request ends: there is room again.
      gw.sim(0).options(INSTANT.withName("capped"));
      open.remove(0).connection().close();
      await().atMost(Duration.ofSeconds(5)).until(() -> capped.inflight() == 1);
      assertThat(gw.client.post("/v1/completions", COMPLETION).status()).isEqualTo(200);
      assertThat(gw.posts(0)).hasSize(3);
      open.forEach(req -> req.connection().close());
    }
  }
}
