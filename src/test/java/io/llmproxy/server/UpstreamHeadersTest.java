package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
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
