package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Issue 3, routing: each backend's {@code api_key} goes upstream as {@code Authorization: Bearer} and
 * its {@code headers} are added; the client's own credentials never go upstream (SPEC §3, §4).
 */
class UpstreamHeadersTest {
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(2);

  private static final String[] CLIENT_HEADERS = {
      "Authorization", "Bearer sk-client-secret",
      "x-api-key", "sk-client-secret",
      "api-key", "sk-client-secret",
      "Proxy-Authorization", "Basic Y2xpZW50OnNlY3JldA==",
      "X-Org", "client-says-evil-corp",
      "X-Custom", "kept"};

  @Test
  void backendKeyAndHeadersGoUpstreamAndTheClientsCredentialsDoNot() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                name: keyed
                models: ["keyed-*"]
                api_key: "${PROVIDER_KEY}"
                headers: {X-Org: acme, OpenAI-Organization: "org-1"}
              - url: "${SIM1}"
                name: open
                models: ["open-*"]
            health_check: {interval: 50ms, timeout: 1s}
            """, Map.of("PROVIDER_KEY", "sk-upstream-123"), INSTANT.withName("keyed"), INSTANT.withName("open"))) {
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("keyed-1", false), CLIENT_HEADERS).status())
          .isEqualTo(200);
      Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("keyed-1", true), CLIENT_HEADERS);
      assertThat(s.status()).isEqualTo(200);
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("open-1", false), CLIENT_HEADERS).status())
          .isEqualTo(200);

      assertThat(gw.posts(0)).hasSize(2).allSatisfy(keyed -> {
        assertThat(keyed.headers().get("authorization")).containsExactly("Bearer sk-upstream-123");
        assertThat(keyed.headers().get("x-org")).as("the backend's value replaces the client's")
            .containsExactly("acme");
        assertThat(keyed.header("openai-organization")).isEqualTo("org-1");
        assertThat(keyed.header("x-custom")).isEqualTo("kept");
        assertNoClientCredentials(keyed);
      });

      RequestRecord open = gw.posts(1).get(0);
      assertThat(open.headers()).doesNotContainKey("authorization");
      assertThat(open.header("x-org")).isEqualTo("client-says-evil-corp");
      assertThat(open.headers()).doesNotContainKey("openai-organization");
      assertThat(open.header("x-custom")).isEqualTo("kept");
      assertNoClientCredentials(open);

      // The health checks and the model-list fetches carry the backend's key as well; a backend
      // without one gets none.
      for (String path : new String[] {"/health", "/v1/models"}) {
        assertThat(gets(gw, 0, path)).as(path).allSatisfy(p ->
            assertThat(p.headers().get("authorization")).containsExactly("Bearer sk-upstream-123"));
        assertThat(gets(gw, 1, path)).as(path).allSatisfy(p -> assertThat(p.headers()).doesNotContainKey("authorization"));
      }
    }
  }

  /**
   * The backend's status line and response headers reach the client as the backend wrote them,
   * its own reason phrase included, less the hop-by-hop headers and the ones its Connection names.
   */
  @Test
  void theBackendsStatusLineAndEndToEndHeadersReachTheClient() {
    Vertx vertx = Vertx.vertx();
    HttpServer backend = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
      boolean known = req.path().equals("/v1/chat/completions");
      req.response().setStatusCode(known ? 200 : 404).setStatusMessage(known ? "Fine Thanks" : "Not Found")
          .putHeader("content-type", "application/json")
          .putHeader("x-backend-note", "kept")
          .putHeader("connection", "keep-alive, x-hop")
          .putHeader("x-hop", "dropped")
          .putHeader("keep-alive", "timeout=5")
          .end("{\"ok\":true}");
    }));
    TestGateway.await(backend.listen(0, "127.0.0.1"));
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${RAW}"
            health_check: {enabled: false}
            """, Map.of("RAW", "http://127.0.0.1:" + backend.actualPort()))) {
      for (String path : new String[] {"/v1/chat/completions", "/v1/responses"}) {
        Response r = gw.client.post(path, TestClient.chat("m", false));
        if (path.equals("/v1/chat/completions")) {
          assertThat(r.status()).isEqualTo(200);
          assertThat(r.statusMessage()).isEqualTo("Fine Thanks");
        } else {
          assertThat(r.status()).isEqualTo(404);
          assertThat(r.statusMessage()).isEqualTo("Not Found");
        }
        assertThat(r.text()).isEqualTo("{\"ok\":true}");
        assertThat(r.header("x-backend-note")).isEqualTo("kept");
        assertThat(r.header("content-type")).isEqualTo("application/json");
        assertThat(r.headers().names()).doesNotContain("x-hop", "keep-alive");
      }
    } finally {
      TestGateway.await(vertx.close());
    }
  }

  private static void assertNoClientCredentials(RequestRecord seen) {
    assertThat(seen.headers().values()).flatMap(v -> v).noneMatch(v -> v.contains("sk-client-secret"));
    assertThat(seen.headers()).doesNotContainKeys("x-api-key", "api-key", "proxy-authorization");
  }

  /** The GETs of {@code path} simulator {@code sim} saw, once there is at least one. */
  private static List<RequestRecord> gets(TestGateway gw, int sim, String path) {
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.sim(sim).requests().stream()
        .anyMatch(r -> r.method().equals("GET") && r.path().equals(path)));
    return gw.sim(sim).requests().stream().filter(r -> r.method().equals("GET") && r.path().equals(path)).toList();
  }
}
