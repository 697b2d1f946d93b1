package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.MutableClock;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 7, acceptance 1: one case for each outcome of SPEC §4's table of authentication errors,
 * client addresses from X-Forwarded-For believed only from trusted proxies (IPv4 and IPv6), the
 * client's key never forwarded nor logged, {@code /v1/models} per key, and
 * {@code llmproxy_auth_failures_total{reason}}.
 */
class AuthMatrixTest {
  private static final String GOOD = "sk-llmproxy-good-0001";
  private static final String DISABLED = "sk-llmproxy-disabled-0002";
  private static final String EXPIRING = "sk-llmproxy-expiring-0003";
  private static final String OFFICE = "sk-llmproxy-office-0004";
  private static final String LLAMA_ONLY = "sk-llmproxy-llama-0005";
  private static final String V6_LOOPBACK = "sk-llmproxy-v6-loop-0006";
  private static final String V6_ULA = "sk-llmproxy-v6-ula-0007";
  private static final String UNKNOWN = "sk-llmproxy-unknown-9999";
  private static final String PROVIDER_KEY = "sk-provider-upstream-secret";

  /** The keys and the backend; {@code ${TRUSTED}} is {@code auth.trusted_proxies}. */
  private static final String YAML = """
      backends:
        - url: "${SIM0}"
          name: gpu-1
          api_key: "%s"
          models: ["llama-3-70b*", "mistral-7b-instruct"]
      routing:
        model_mapping: {"llama-3-70b": "llama-3-70b-instruct"}
      auth:
        enabled: true
        trusted_proxies: %s
      api_keys:
        - {key: "%s", name: "研发部门", user_id: "dept_dev"}
        - {key: "%s", name: "off", status: disabled}
        - {key: "%s", name: "expiring", expires_at: "2026-06-30T00:00:00Z"}
        - {key: "%s", name: "office", allowed_ips: ["10.0.1.0/24"]}
        - {key: "%s", name: "llama only", allowed_models: ["llama-3-70b*"]}
        - {key: "%s", name: "v6 loopback", allowed_ips: ["::1/128"]}
        - {key: "%s", name: "v6 ula", allowed_ips: ["fd00::/8"]}
      data_dir: "${DATA}"
      health_check: {enabled: false}
      """;

  private static final SimulatorOptions SIM = SimulatorOptions.defaults().withName("gpu-1")
      .withModels("llama-3-70b-instruct", "mistral-7b-instruct")
      .withTtft(Duration.ofMillis(1)).withItl(Duration.ZERO).withTokens(3);

  @TempDir
  static Path dataDir;

  private static final MutableClock CLOCK = MutableClock.at("2026-06-01T12:00:00Z");
  private static TestGateway gw;

  static String yaml(String trustedProxies) {
    return YAML.formatted(PROVIDER_KEY, trustedProxies, GOOD, DISABLED, EXPIRING, OFFICE, LLAMA_ONLY, V6_LOOPBACK, V6_ULA);
  }

  @BeforeAll
  static void start() {
    gw = TestGateway.builder(yaml("[]")).vars(Map.of("DATA", dataDir.resolve("untrusted").toString()))
        .clock(CLOCK).captureAccessLog().start(SIM);
  }

  @AfterAll
  static void stop() {
    if (gw != null) {
      gw.close();
    }
  }

  private static Response chat(TestGateway g, String key, String model, String... headers) {
    List<String> h = new ArrayList<>(List.of(headers));
    if (key != null) {
      h.add("authorization");
      h.add("Bearer " + key);
    }
    return g.client.post("/v1/chat/completions", TestClient.chat(model, false), h.toArray(String[]::new));
  }

  private static void assertError(Response r, int status, String code) {
    assertThat(r.status()).as(r.text()).isEqualTo(status);
    JsonObject error = r.json().getJsonObject("error");
    assertThat(error.getString("code")).isEqualTo(code);
    assertThat(error.getString("message")).isNotBlank();
    assertThat(r.header("content-type")).startsWith("application/json");
  }

  private static double authFailures(TestGateway g, String reason) {
    return Scrape.of(g).value("llmproxy_auth_failures_total", "reason", reason);
  }

  /** Runs {@code r}, then checks that it counted exactly one auth failure with {@code reason}. */
  private static void countsOne(TestGateway g, String reason, Runnable r) {
    double before = authFailures(g, reason);
    int posts = g.posts(0).size();
    r.run();
    assertThat(authFailures(g, reason)).as("llmproxy_auth_failures_total{reason=%s}", reason).isEqualTo(before + 1);
    assertThat(g.posts(0)).as("a refused request never reaches the backend").hasSize(posts);
  }

  @Test
  void noKeyIs401InvalidApiKey() {
    countsOne(gw, "missing", () -> assertError(chat(gw, null, "llama-3-70b"), 401, "invalid_api_key"));
    countsOne(gw, "missing", () -> assertError(
        gw.client.post("/v1/chat/completions", TestClient.chat("llama-3-70b", false), "authorization", "Basic abc"),
        401, "invalid_api_key"));
    countsOne(gw, "missing", () -> assertError(
        gw.client.post("/v1/chat/completions", TestClient.chat("llama-3-70b", false), "authorization", "Bearer  "),
        401, "invalid_api_key"));
  }

  @Test
  void unknownKeyIs401InvalidApiKey() {
    countsOne(gw, "invalid", () -> assertError(chat(gw, UNKNOWN, "llama-3-70b"), 401, "invalid_api_key"));
    // a prefix of a real key, and the real key with a different case, are other keys
    countsOne(gw, "invalid", () -> assertError(chat(gw, GOOD.substring(0, GOOD.length() - 1), "llama-3-70b"), 401,
        "invalid_api_key"));
    countsOne(gw, "invalid", () -> assertError(chat(gw, GOOD.toUpperCase(), "llama-3-70b"), 401, "invalid_api_key"));
  }

  @Test
  void disabledKeyIs403KeyDisabled() {
    countsOne(gw, "disabled", () -> assertError(chat(gw, DISABLED, "llama-3-70b"), 403, "key_disabled"));
  }

  @Test
  void expiredKeyIs403KeyExpired() {
    CLOCK.set("2026-06-29T23:59:59Z");
    assertThat(chat(gw, EXPIRING, "llama-3-70b").status()).isEqualTo(200);
    CLOCK.set("2026-06-30T00:00:00Z");
    countsOne(gw, "expired", () -> assertError(chat(gw, EXPIRING, "llama-3-70b"), 403, "key_expired"));
    CLOCK.set("2026-06-01T12:00:00Z");
    assertThat(chat(gw, EXPIRING, "llama-3-70b").status()).isEqualTo(200);
  }

  @Test
  void addressNotAllowedIs403IpNotAllowed() {
    // the peer is 127.0.0.1, not in 10.0.1.0/24
    countsOne(gw, "ip_not_allowed", () -> assertError(chat(gw, OFFICE, "llama-3-70b"), 403, "ip_not_allowed"));
  }

  @Test
  void modelNotAllowedIs403ModelNotAllowed() {
    assertThat(chat(gw, LLAMA_ONLY, "llama-3-70b").status()).isEqualTo(200);
    assertThat(chat(gw, LLAMA_ONLY, "llama-3-70b-instruct").status()).isEqualTo(200);
    countsOne(gw, "model_not_allowed", () -> {
      Response r = chat(gw, LLAMA_ONLY, "mistral-7b-instruct");
      assertError(r, 403, "model_not_allowed");
      assertThat(r.json().getJsonObject("error").getString("param")).isEqualTo("model");
    });
  }

  /** A request naming no model is a bad request whatever the key: 400 on param model, not a refused model. */
  @Test
  void aMissingOrEmptyModelIs400EvenForAKeyWithAllowedModels() {
    for (String body : List.of("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")) {
      double refusedBefore = authFailures(gw, "model_not_allowed");
      int posts = gw.posts(0).size();
      Response r = gw.client.post("/v1/chat/completions", body, "authorization", "Bearer " + LLAMA_ONLY);

      assertError(r, 400, "invalid_request_error");
      assertThat(r.json().getJsonObject("error").getString("param")).as(body).isEqualTo("model");
      assertThat(authFailures(gw, "model_not_allowed")).as("not an auth failure").isEqualTo(refusedBefore);
      assertThat(gw.posts(0)).hasSize(posts);
    }
  }

  /**
   * A model name is the client's to choose and may be huge: what the error message and the access
   * log echo of it is its start only, whether it was not found, not allowed, or sent on to a backend.
   */
  @Test
  void aHugeModelNameIsEchoedOnlyInPart() {
    String huge = "q".repeat(1 << 20);
    Response notFound = chat(gw, GOOD, huge, "x-request-id", "req-huge-model-1");
    assertError(notFound, 404, "model_not_found");
    Response notAllowed = chat(gw, LLAMA_ONLY, huge, "x-request-id", "req-huge-model-2");
    assertError(notAllowed, 403, "model_not_allowed");
    for (Response r : List.of(notFound, notAllowed)) {
      assertThat(r.body().length()).as("error body bytes").isLessThan(1024);
      assertThat(r.json().getJsonObject("error").getString("message")).contains("q".repeat(256) + "...");
    }
    // served by the glob llama-3-70b*: the backend gets the whole name, the log line its start
    chat(gw, GOOD, "llama-3-70b-" + huge, "x-request-id", "req-huge-model-3");

    await().atMost(Duration.ofSeconds(5)).until(() -> gw.accessLog().contains("req-huge-model-3"));
    List<String> lines = gw.accessLog().lines().filter(l -> l.contains("req-huge-model-")).toList();
    assertThat(lines).hasSize(3);
    for (String line : lines) {
      assertThat(line.length()).as("access log line").isLessThan(2048);
      JsonObject entry = new JsonObject(line);
      assertThat(entry.getString("model")).endsWith("...").hasSizeLessThan(300);
    }
  }

  @Test
  void forwardedForFromAnUntrustedPeerIsNotBelieved() {
    // 127.0.0.1 is not in trusted_proxies (none): a client claiming an office address is not believed
    countsOne(gw, "ip_not_allowed", () -> assertError(chat(gw, OFFICE, "llama-3-70b", "x-forwarded-for", "10.0.1.5"),
        403, "ip_not_allowed"));
    countsOne(gw, "ip_not_allowed", () -> assertError(chat(gw, V6_ULA, "llama-3-70b", "x-forwarded-for", "fd00::1"),
        403, "ip_not_allowed"));
  }

  @Test
  void forwardedForFromATrustedPeerIsBelievedIpv4AndIpv6() {
    try (TestGateway trusted = TestGateway.builder(yaml("[\"127.0.0.1/32\"]"))
        .vars(Map.of("DATA", dataDir.resolve("trusted").toString())).clock(CLOCK).start(SIM)) {
      assertThat(chat(trusted, OFFICE, "llama-3-70b", "x-forwarded-for", "10.0.1.5").status()).isEqualTo(200);
      // the proxy appends the address it saw: the rightmost untrusted hop is the client, whatever it wrote itself
      assertThat(chat(trusted, OFFICE, "llama-3-70b", "x-forwarded-for", "6.6.6.6, 10.0.1.5").status()).isEqualTo(200);
      countsOne(trusted, "ip_not_allowed", () -> assertError(
          chat(trusted, OFFICE, "llama-3-70b", "x-forwarded-for", "10.0.1.5, 6.6.6.6"), 403, "ip_not_allowed"));
      countsOne(trusted, "ip_not_allowed", () -> assertError(
          chat(trusted, OFFICE, "llama-3-70b", "x-forwarded-for", "10.0.2.5"), 403, "ip_not_allowed"));
      // without X-Forwarded-For the trusted peer itself is the client
      countsOne(trusted, "ip_not_allowed", () -> assertError(chat(trusted, OFFICE, "llama-3-70b"), 403, "ip_not_allowed"));
      // two headers are one list, in order
      assertThat(chat(trusted, OFFICE, "llama-3-70b", "x-forwarded-for", "6.6.6.6", "x-forwarded-for", "10.0.1.7")
          .status()).isEqualTo(200);
      // an IPv4-mapped IPv6 address is the IPv4 address
      assertThat(chat(trusted, OFFICE, "llama-3-70b", "x-forwarded-for", "::ffff:10.0.1.9").status()).isEqualTo(200);

      // IPv6 through the trusted proxy: fd00::/8
      assertThat(chat(trusted, V6_ULA, "llama-3-70b", "x-forwarded-for", "fd00::1234").status()).isEqualTo(200);
      assertThat(chat(trusted, V6_ULA, "llama-3-70b", "x-forwarded-for", "fdff:ffff::1").status()).isEqualTo(200);
      assertThat(chat(trusted, V6_ULA, "llama-3-70b", "x-forwarded-for", "[fd00::1]").status()).isEqualTo(200);
      countsOne(trusted, "ip_not_allowed", () -> assertError(
          chat(trusted, V6_ULA, "llama-3-70b", "x-forwarded-for", "fe80::1"), 403, "ip_not_allowed"));
      countsOne(trusted, "ip_not_allowed", () -> assertError(
          chat(trusted, V6_ULA, "llama-3-70b", "x-forwarded-for", "2001:db8::1"), 403, "ip_not_allowed"));
      countsOne(trusted, "ip_not_allowed", () -> assertError(
          chat(trusted, V6_LOOPBACK, "llama-3-70b", "x-forwarded-for", "fd00::1"), 403, "ip_not_allowed"));
      assertThat(chat(trusted, V6_LOOPBACK, "llama-3-70b", "x-forwarded-for", "0:0:0:0:0:0:0:1").status()).isEqualTo(200);
      // garbage in the chain: the client is unknown, and a key with address rules refuses it
      countsOne(trusted, "ip_not_allowed", () -> assertError(
          chat(trusted, OFFICE, "llama-3-70b", "x-forwarded-for", "10.0.1.5, not-an-address"), 403, "ip_not_allowed"));
      // hops written with a port (as some proxies do) are read without it
      assertThat(chat(trusted, OFFICE, "llama-3-70b", "x-forwarded-for", "10.0.1.5:51234").status()).isEqualTo(200);
      assertThat(chat(trusted, V6_ULA, "llama-3-70b", "x-forwarded-for", "[fd00::7]:443").status()).isEqualTo(200);
    }
  }

  /** Whether this machine can listen on [::1]. */
  private static boolean ipv6LoopbackAvailable() {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress(InetAddress.getByName("::1"), 0));
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  @Test
  void anIpv6PeerIsMatchedAgainstIpv6Ranges() {
    Assumptions.assumeTrue(ipv6LoopbackAvailable(), "no IPv6 loopback here; IPv6 is covered through X-Forwarded-For");
    try (TestGateway v6 = TestGateway.builder("listen: \"[::1]:0\"\n" + yaml("[]")).ownListen()
        .vars(Map.of("DATA", dataDir.resolve("v6").toString())).clock(CLOCK).start(SIM)) {
      assertThat(v6.url()).startsWith("http://[::1]:");
      assertThat(chat(v6, V6_LOOPBACK, "llama-3-70b").status()).isEqualTo(200);
      assertThat(chat(v6, GOOD, "llama-3-70b").status()).isEqualTo(200);
      countsOne(v6, "ip_not_allowed", () -> assertError(chat(v6, V6_ULA, "llama-3-70b"), 403, "ip_not_allowed"));
      countsOne(v6, "ip_not_allowed", () -> assertError(chat(v6, OFFICE, "llama-3-70b"), 403, "ip_not_allowed"));
    }
  }

  @Test
  void onADualStackListenerAnIpv4ClientIsMatchedAsIpv4() {
    Assumptions.assumeTrue(ipv6LoopbackAvailable(), "no IPv6 here");
    String yaml = "listen: \"[::]:0\"\n" + yaml("[]").replace("allowed_ips: [\"10.0.1.0/24\"]", "allowed_ips: [\"127.0.0.0/8\"]");
    try (TestGateway dual = TestGateway.builder(yaml).ownListen()
        .vars(Map.of("DATA", dataDir.resolve("dual").toString())).clock(CLOCK).start(SIM)) {
      assertThat(dual.url()).startsWith("http://127.0.0.1:");
      assertThat(chat(dual, OFFICE, "llama-3-70b").status()).isEqualTo(200);
      countsOne(dual, "ip_not_allowed", () -> assertError(chat(dual, V6_LOOPBACK, "llama-3-70b"), 403, "ip_not_allowed"));
    }
  }

  @Test
  void theClientKeyNeverReachesTheBackendNorTheAccessLog() {
    int before = gw.posts(0).size();
    Response ok = chat(gw, GOOD, "llama-3-70b", "x-request-id", "req-secret-check-1");
    assertThat(ok.status()).isEqualTo(200);
    assertThat(gw.client.stream("/v1/chat/completions", TestClient.chat("llama-3-70b", true),
        "authorization", "Bearer " + GOOD, "x-request-id", "req-secret-check-2").status()).isEqualTo(200);
    assertError(chat(gw, UNKNOWN, "llama-3-70b", "x-request-id", "req-secret-check-3"), 401, "invalid_api_key");
    assertError(chat(gw, DISABLED, "llama-3-70b", "x-request-id", "req-secret-check-4"), 403, "key_disabled");
    // other places a client may put a key are not forwarded either
    assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("llama-3-70b", false),
        "authorization", "Bearer " + GOOD, "api-key", GOOD, "x-api-key", GOOD).status()).isEqualTo(200);

    List<RequestRecord> seen = gw.posts(0).subList(before, gw.posts(0).size());
    assertThat(seen).hasSize(3);
    for (RequestRecord r : seen) {
      assertThat(r.header("authorization")).as("the backend's own key replaces the client's").isEqualTo("Bearer " + PROVIDER_KEY);
      assertThat(r.headers().toString()).doesNotContain(GOOD);
      assertThat(r.bodyText()).doesNotContain(GOOD);
    }

    await().atMost(Duration.ofSeconds(5)).until(() -> gw.accessLog().contains("req-secret-check-4"));
    String log = gw.accessLog();
    assertThat(log).contains("req-secret-check-1", "req-secret-check-2", "req-secret-check-3", "\"key_name\":\"研发部门\"",
        "\"user_id\":\"dept_dev\"");
    for (String secret : List.of(GOOD, UNKNOWN, DISABLED, PROVIDER_KEY)) {
      assertThat(log).as("the access log").doesNotContain(secret);
    }
  }

  private static List<String> modelIds(Response r) {
    assertThat(r.status()).as(r.text()).isEqualTo(200);
    JsonArray data = r.json().getJsonArray("data");
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < data.size(); i++) {
      ids.add(data.getJsonObject(i).getString("id"));
    }
    return ids;
  }

  @Test
  void modelsListsOnlyTheKeysModels() {
    // the backend's own list arrives shortly after the start
    await().atMost(Duration.ofSeconds(5)).until(() ->
        modelIds(gw.client.get("/v1/models", "authorization", "Bearer " + GOOD)).contains("llama-3-70b-instruct"));
    assertThat(modelIds(gw.client.get("/v1/models", "authorization", "Bearer " + GOOD)))
        .containsExactlyInAnyOrder("llama-3-70b", "mistral-7b-instruct", "llama-3-70b-instruct");
    assertThat(modelIds(gw.client.get("/v1/models", "authorization", "Bearer " + LLAMA_ONLY)))
        .containsExactlyInAnyOrder("llama-3-70b", "llama-3-70b-instruct");
    countsOne(gw, "missing", () -> assertError(gw.client.get("/v1/models"), 401, "invalid_api_key"));
    countsOne(gw, "disabled", () -> assertError(gw.client.get("/v1/models", "authorization", "Bearer " + DISABLED), 403,
        "key_disabled"));
  }
}
