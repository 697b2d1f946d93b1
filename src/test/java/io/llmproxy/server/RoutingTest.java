package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** Acceptance 4: candidates, mapping, strategies and session affinity. */
class RoutingTest {
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1);

  @Test
  void globsAndMappingRouteAndTheBackendGetsTheMappedName() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: llama
                models: ["llama-3-70b*"]
              - url: "${SIM1}"
                name: mistral
                models: ["mistral-7b*"]
            routing:
              model_mapping: {"llama-3-70b": "llama-3-70b-instruct", "mistral": "mistral-7b-instruct-v0.2"}
            health_check: {enabled: false}
            """, INSTANT.withName("llama"), INSTANT.withName("mistral"))) {
      String body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi ✓\"}],\n \"model\": \"llama-3-70b\", \"max_tokens\": 1}";
      Response r = gw.client.post("/v1/chat/completions", body);
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("llama");
      RequestRecord seen = gw.posts(0).get(0);
      assertThat(seen.model()).isEqualTo("llama-3-70b-instruct");
      assertThat(seen.bodyText()).isEqualTo(body.replace("\"llama-3-70b\"", "\"llama-3-70b-instruct\""));

      assertThat(gw.client.post("/v1/completions", "{\"model\":\"mistral\",\"prompt\":\"x\"}")
          .header("x-llmproxy-backend")).isEqualTo("mistral");
      assertThat(gw.posts(1).get(0).model()).isEqualTo("mistral-7b-instruct-v0.2");
      assertThat(gw.client.post("/v1/completions", "{\"model\":\"mistral-7b-base\",\"prompt\":\"x\"}")
          .header("x-llmproxy-backend")).isEqualTo("mistral");
      // An unmapped name that a glob matches goes through unchanged.
      assertThat(gw.posts(1).get(1).model()).isEqualTo("mistral-7b-base");

      Response unknown = gw.client.post("/v1/chat/completions", TestClient.chat("gpt-4", false));
      assertThat(unknown.status()).isEqualTo(404);
      assertThat(unknown.json().getJsonObject("error").getString("code")).isEqualTo("model_not_found");
      assertThat(unknown.json().getJsonObject("error").getString("param")).isEqualTo("model");
      assertThat(gw.posts(0)).hasSize(1);
      assertThat(gw.posts(1)).hasSize(2);
    }
  }

  /** RFC 9112 §3.2.2: a request target in absolute form goes upstream in origin form, under the backend's base path. */
  @Test
  void anAbsoluteFormTargetGoesUpstreamAsAPath() throws Exception {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}/v1"
            health_check: {enabled: false}
            """, INSTANT)) {
      String body = TestClient.chat("sim-model", false);
      try (java.net.Socket s = new java.net.Socket("127.0.0.1", gw.port())) {
        s.setSoTimeout(5000);
        s.getOutputStream().write(("POST http://gateway.example/v1/chat/completions?trace=1 HTTP/1.1\r\n"
            + "Host: gateway.example\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body)
            .getBytes(StandardCharsets.UTF_8));
        String response = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(response).startsWith("HTTP/1.1 200");
      }
      assertThat(gw.posts(0)).singleElement().extracting(RequestRecord::path).isEqualTo("/v1/chat/completions");
    }
  }

  @Test
  void weightedSharesMatchTheWeightsOver10000Requests() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                weight: 5
              - url: "${SIM1}"
                weight: 3
              - url: "${SIM2}"
                weight: 2
            load_balance_strategy: weighted_round_robin
            health_check: {enabled: false}
            """, INSTANT, INSTANT, INSTANT)) {
      runConcurrently(gw, 10_000, 32);
      int[] counts = {gw.posts(0).size(), gw.posts(1).size(), gw.posts(2).size()};
      assertThat(counts[0] + counts[1] + counts[2]).isEqualTo(10_000);
      assertThat(counts[0]).isBetween(4_750, 5_250);
      assertThat(counts[1]).isBetween(2_850, 3_150);
      assertThat(counts[2]).isBetween(1_900, 2_100);
    }
  }

  @Test
  void randomSharesFollowTheWeightsToo() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                weight: 3
              - url: "${SIM1}"
                weight: 1
            load_balance_strategy: random
            health_check: {enabled: false}
            """, INSTANT, INSTANT)) {
      runConcurrently(gw, 4_000, 16);
      assertThat(gw.posts(0).size()).isBetween(2_850, 3_150);
    }
  }

  private static void runConcurrently(TestGateway gw, int total, int concurrency) {
    Buffer body = Buffer.buffer("{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":1}");
    List<Future<TestClient.Response>> wave = new ArrayList<>();
    int sent = 0;
    while (sent < total) {
      wave.clear();
      for (int i = 0; i < concurrency && sent < total; i++, sent++) {
        wave.add(gw.client.sendAsync(HttpMethod.POST, "/v1/completions", body));
      }
      for (Future<TestClient.Response> f : wave) {
        assertThat(TestGateway.await(f).status()).isEqualTo(200);
      }
    }
  }

  @Test
  void leastConnectionsBalancesRequestsInFlight() {
    SimulatorOptions slow = INSTANT.withTtft(Duration.ofSeconds(60));
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
              - url: "${SIM1}"
                weight: 2
              - url: "${SIM2}"
            load_balance_strategy: least_connections
            health_check: {enabled: false}
            """, slow, slow, slow)) {
      Map<String, io.vertx.core.http.HttpClientRequest> open = new HashMap<>();
      for (int i = 0; i < 40; i++) {
        openOne(gw, open, "r" + i);
      }
      // In flight per unit of weight is even: 10, 20 and 10.
      assertThat(List.of(openOn(gw, 0).size(), openOn(gw, 1).size(), openOn(gw, 2).size()))
          .containsExactly(10, 20, 10);
      // Five of backend 0's requests end; the next five go there, to the least loaded.
      openOn(gw, 0).stream().limit(5).forEach(id -> open.get(id).connection().close());
      await().atMost(Duration.ofSeconds(5)).until(() -> inflight(gw) == 35);
      for (int i = 40; i < 45; i++) {
        openOne(gw, open, "r" + i);
      }
      assertThat(openOn(gw, 0)).contains("r40", "r41", "r42", "r43", "r44");
      open.values().forEach(r -> r.connection().close());
    }
  }

  private static void openOne(TestGateway gw, Map<String, io.vertx.core.http.HttpClientRequest> open, String id) {
    int before = inflight(gw);
    open.put(id, gw.client.open("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}", "x-request-id", id));
    await().atMost(Duration.ofSeconds(5)).until(() -> inflight(gw) == before + 1);
  }

  /** The request ids a simulator is still working on. */
  private static List<String> openOn(TestGateway gw, int sim) {
    return gw.posts(sim).stream().filter(r -> !r.completed() && !r.clientDisconnected())
        .map(r -> r.header("x-request-id")).toList();
  }

  private static int inflight(TestGateway gw) {
    return gw.gateway.router().backends().stream().mapToInt(b -> b.inflight()).sum();
  }

  @Test
  void sessionAffinitySticksAndMovesWhenItsBackendGoesDown() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: b0
              - url: "${SIM1}"
                name: b1
              - url: "${SIM2}"
                name: b2
            routing:
              session_affinity: {header: "x-session-id"}
            health_check: {interval: 50ms, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 1}
            """, INSTANT.withName("b0"), INSTANT.withName("b1"), INSTANT.withName("b2"))) {
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.router().backends().stream()
          .allMatch(b -> b.health() == io.llmproxy.routing.Backend.Health.UP));
      Map<String, String> home = new HashMap<>();
      for (int s = 0; s < 30; s++) {
        String session = "session-" + s;
        Set<String> seen = new java.util.HashSet<>();
        for (int i = 0; i < 5; i++) {
          seen.add(backendFor(gw, session));
        }
        assertThat(seen).as(session).hasSize(1);
        home.put(session, seen.iterator().next());
      }
      assertThat(Set.copyOf(home.values())).as("sessions spread over the backends").hasSize(3);

      String sessionOfB1 = home.entrySet().stream().filter(e -> e.getValue().equals("b1")).findFirst().orElseThrow().getKey();
      gw.sim(1).options(gw.sim(1).options().withHealthy(false));
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.router().backends().get(1).health()
          == io.llmproxy.routing.Backend.Health.DOWN);
      String moved = backendFor(gw, sessionOfB1);
      assertThat(moved).isNotEqualTo("b1");
      for (int i = 0; i < 5; i++) {
        assertThat(backendFor(gw, sessionOfB1)).isEqualTo(moved);
      }
      // Sessions of the other backends did not move.
      Map<String, String> others = home.entrySet().stream().filter(e -> !e.getValue().equals("b1"))
          .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue));
      others.forEach((session, backend) -> assertThat(backendFor(gw, session)).as(session).isEqualTo(backend));
    }
  }

  private static String backendFor(TestGateway gw, String session) {
    Response r = gw.client.post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}", "x-session-id", session);
    assertThat(r.status()).isEqualTo(200);
    return r.header("x-llmproxy-backend");
  }

  @Test
  void requestsWithoutModelGoToAnyBackend() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                models: ["only-this"]
            health_check: {enabled: false}
            """, INSTANT)) {
      Response r = gw.client.post("/generate", "{\"inputs\":\"hi\",\"parameters\":{\"max_new_tokens\":2}}");
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.text()).contains("generated_text");
      assertThat(gw.posts(0).get(0).bodyText().getBytes(StandardCharsets.UTF_8))
          .isEqualTo("{\"inputs\":\"hi\",\"parameters\":{\"max_new_tokens\":2}}".getBytes(StandardCharsets.UTF_8));
    }
  }
}
