package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.JavaProcess;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Config reload (SPEC §2 SIGHUP, §4 {@code POST /admin/reload}) on a running gateway: new requests
 * follow the file at once, requests in flight finish on what they started with, a file with
 * problems changes nothing, and settings bound to the process wait for a restart.
 */
class ConfigReloadIntegrationTest {
  private static final String TOKEN = "adm-reload-0123456789";
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(3);

  private static final String V1 = """
      backends:
        - {url: "${SIM0}", name: a, models: ["m"]}
        - {url: "${SIM1}", name: c, models: ["old-*"]}
      admin: {token: "${ADMIN}"}
      health_check: {enabled: false}
      """;

  /** a is dropped (its stream still in flight), c stays, b is added behind a mapped name. */
  private static final String V2 = """
      backends:
        - {url: "${SIM1}", name: c, models: ["old-*"]}
        - {url: "${SIM2}", name: b, models: ["n"]}
      routing:
        model_mapping: {alias: n}
      admin: {token: "${ADMIN}"}
      health_check: {enabled: false}
      """;

  private static TestGateway start(Path dir, String yaml, SimulatorOptions... sims) {
    return TestGateway.builder(yaml).vars(Map.of("ADMIN", TOKEN)).configFile(dir.resolve("config.yaml")).start(sims);
  }

  private static Response reload(TestGateway gw) {
    return gw.client.send(HttpMethod.POST, "/admin/reload", null, "authorization", "Bearer " + TOKEN);
  }

  private static Response chat(TestGateway gw, String model) {
    return gw.client.post("/v1/chat/completions", TestClient.chat(model, false));
  }

  @Test
  void newRequestsFollowTheReloadedFileWhileAStreamToARemovedBackendFinishes(@TempDir Path dir) {
    try (TestGateway gw = start(dir, V1,
        INSTANT.withName("a").withItl(Duration.ofMillis(100)).withTokens(10), INSTANT.withName("c"),
        INSTANT.withName("b"))) {
      Future<Streamed> stream = gw.client.streamAsync("/v1/chat/completions", TestClient.chat("m", true));
      await().atMost(Duration.ofSeconds(10)).until(() -> gw.posts(0).size() == 1 && gw.posts(0).get(0).chunksSent() >= 2);

      gw.writeConfig(V2);
      Response r = reload(gw);
      assertThat(r.status()).as(r.text()).isEqualTo(200);
      JsonObject body = r.json();
      assertThat(body.getString("object")).isEqualTo("config_reload");
      assertThat(body.getBoolean("changed")).isTrue();
      assertThat(body.getJsonArray("applied").getList()).containsExactly("backends: added b; removed a", "routing");
      assertThat(body.getJsonArray("restart_required").getList()).isEmpty();

      Response mapped = chat(gw, "alias");
      assertThat(mapped.status()).as(mapped.text()).isEqualTo(200);
      assertThat(mapped.header("x-llmproxy-backend")).isEqualTo("b");
      assertThat(gw.posts(2)).hasSize(1);
      assertThat(new JsonObject(gw.posts(2).get(0).bodyText()).getString("model")).as("the name b receives").isEqualTo("n");
      assertThat(chat(gw, "m").json().getJsonObject("error").getString("code"))
          .as("the removed backend's model").isEqualTo("model_not_found");
      assertThat(chat(gw, "old-1").header("x-llmproxy-backend")).isEqualTo("c");

      Streamed s = TestGateway.await(stream);
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.text()).endsWith("data: [DONE]\n\n");
      RequestRecord a = gw.posts(0).get(0);
      assertThat(a.completed()).isTrue();
      assertThat(a.clientDisconnected()).as("the stream begun before the reload was not cut").isFalse();

      assertThat(gw.client.get("/v1/models").text()).contains("\"alias\"").doesNotContain("\"m\"");
      Scrape scrape = Scrape.of(gw);
      assertThat(scrape.matching("llmproxy_backend_up").stream().map(x -> x.labels().get("backend")))
          .containsExactlyInAnyOrder("b", "c");
      assertThat(scrape.value("llmproxy_config_reloads_total", "result", "success")).isEqualTo(1);
      assertThat(scrape.value("llmproxy_config_last_reload_successful")).isEqualTo(1);
    }
  }

  /**
   * An answer from a backend the reload removed, arriving after the reload, leaves no statistics or
   * hedge-threshold gauge behind for it.
   */
  @Test
  void aRemovedBackendsLateAnswerLeavesNoGaugeBehind(@TempDir Path dir) {
    String hedging = "routing: {hedge: {enabled: true, cold_start_race: false, min_samples: 1000}}\n";
    try (TestGateway gw = start(dir, V1 + hedging, INSTANT.withName("a").withTtft(Duration.ofMillis(300)),
        INSTANT.withName("c"), INSTANT.withName("b"))) {
      assertThat(chat(gw, "old-1").status()).isEqualTo(200);
      Future<Response> late = gw.client.sendAsync(HttpMethod.POST, "/v1/chat/completions",
          Buffer.buffer(TestClient.chat("m", false)));
      await().atMost(Duration.ofSeconds(10)).until(() -> gw.posts(0).size() == 1);

      gw.writeConfig(V1.replace("  - {url: \"${SIM0}\", name: a, models: [\"m\"]}\n", "") + hedging);
      Response r = reload(gw);
      assertThat(r.json().getJsonArray("applied").getList()).as(r.text()).containsExactly("backends: removed a");
      assertThat(TestGateway.await(late).status()).as("it still finishes").isEqualTo(200);

      List<String> gauges = Scrape.of(gw).matching("llmproxy_hedge_threshold_ms").stream()
          .map(x -> x.labels().get("backend")).toList();
      assertThat(gauges).as("c's, from before the reload").contains("c").doesNotContain("a");
    }
  }

  /**
   * With hedging on, the hedge and race counters of every model the config names exist at 0 from the
   * start, so an alert's increase() counts their first event; a reload adds those of new names. A
   * name matched only by a glob gets them at its first event.
   */
  @Test
  void hedgeCountersOfTheNamedModelsStartAtZero(@TempDir Path dir) {
    String hedging = "routing: {hedge: {enabled: true, cold_start_race: true}}\n";
    try (TestGateway gw = start(dir, V1 + hedging, INSTANT.withName("a"), INSTANT.withName("c"),
        INSTANT.withName("b"))) {
      Scrape before = Scrape.of(gw);
      assertThat(before.matching("llmproxy_hedges_total", "model", "m")).hasSize(3)
          .allSatisfy(x -> assertThat(x.value()).isZero());
      assertThat(before.matching("llmproxy_races_total", "model", "m")).hasSize(1);
      assertThat(before.matching("llmproxy_hedges_total", "model", "old-*")).isEmpty();

      gw.writeConfig(V2.replace("routing:\n", "routing:\n  hedge: {enabled: true, cold_start_race: false}\n"));
      assertThat(reload(gw).status()).isEqualTo(200);
      Scrape after = Scrape.of(gw);
      for (String model : List.of("n", "alias")) {
        assertThat(after.matching("llmproxy_hedges_total", "model", model)).as(model).hasSize(3);
        assertThat(after.matching("llmproxy_races_total", "model", model)).as("no races configured").isEmpty();
      }
    }
  }

  /** A backend whose name and URL stay is the same backend: its requests in flight are still counted. */
  @Test
  void aChangedBackendKeepsItsRequestsInFlight(@TempDir Path dir) {
    try (TestGateway gw = start(dir, V1, INSTANT.withItl(Duration.ofMillis(100)).withTokens(10), INSTANT)) {
      var before = gw.gateway.router().backend("a");
      Future<Streamed> stream = gw.client.streamAsync("/v1/chat/completions", TestClient.chat("m", true));
      await().atMost(Duration.ofSeconds(10)).until(() -> gw.posts(0).size() == 1 && gw.posts(0).get(0).chunksSent() >= 1);

      gw.writeConfig(V1.replace("name: a,", "name: a, weight: 5, max_concurrent: 1,"));
      assertThat(reload(gw).json().getJsonArray("applied").getList()).containsExactly("backends: changed a");
      var after = gw.gateway.router().backend("a");
      assertThat(after).isNotSameAs(before);
      assertThat(after.weight()).isEqualTo(5);
      assertThat(after.inflight()).as("the stream begun before the reload").isEqualTo(1);
      assertThat(chat(gw, "m").status()).as("max_concurrent 1 counts the stream in flight").isEqualTo(503);

      assertThat(TestGateway.await(stream).text()).endsWith("data: [DONE]\n\n");
      await().atMost(Duration.ofSeconds(5)).until(() -> after.inflight() == 0);
      assertThat(chat(gw, "m").status()).isEqualTo(200);
    }
  }

  /**
   * Health checks turned off by a reload no longer hold a backend down, and turned on again they
   * start from an unknown verdict, as at a start.
   */
  @Test
  void healthChecksTurnedOffAndOnAgain(@TempDir Path dir) {
    String checked = """
        backends:
          - {url: "${SIM0}", name: a, models: ["m"]}
        admin: {token: "${ADMIN}"}
        health_check: {interval: 100ms, timeout: 80ms, unhealthy_threshold: 1, healthy_threshold: 1}
        """;
    try (TestGateway gw = start(dir, checked, INSTANT.withHealthy(false))) {
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.client.get("/ready").status() == 503);

      gw.writeConfig(checked.replace("health_check: {interval", "health_check: {enabled: false, interval"));
      assertThat(reload(gw).json().getJsonArray("applied").getList()).containsExactly("health_check");
      assertThat(gw.client.get("/ready").status()).as("no checks: every backend counts as up").isEqualTo(200);
      assertThat(Scrape.of(gw).value("llmproxy_backend_up", "backend", "a")).isEqualTo(1);

      gw.writeConfig(checked);
      reload(gw);
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.client.get("/ready").status() == 503);
      assertThat(gw.gateway.router().backend("a").health()).isEqualTo(io.llmproxy.routing.Backend.Health.DOWN);
    }
  }

  @Test
  void aFileWithProblemsChangesNothing(@TempDir Path dir) {
    try (TestGateway gw = start(dir, V1, INSTANT, INSTANT)) {
      gw.writeConfig("""
          backends:
            - {url: "notaurl", name: a, models: ["m"]}
          admin: {token: "${ADMIN}"}
          helth_check: {enabled: false}
          """);
      Response r = reload(gw);
      assertThat(r.status()).as(r.text()).isEqualTo(400);
      JsonObject e = r.json().getJsonObject("error");
      assertThat(e.getString("code")).isEqualTo("invalid_config");
      assertThat(e.getString("type")).isEqualTo("invalid_request_error");
      assertThat(e.getString("message")).contains("the running config is unchanged")
          .contains("backends[0].url").contains("helth_check");
      assertThat(chat(gw, "m").status()).as("still routed by the config it ran on").isEqualTo(200);
      assertThat(chat(gw, "old-1").header("x-llmproxy-backend")).isEqualTo("c");
      Scrape scrape = Scrape.of(gw);
      assertThat(scrape.value("llmproxy_config_reloads_total", "result", "failure")).isEqualTo(1);
      assertThat(scrape.value("llmproxy_config_last_reload_successful")).isZero();

      gw.writeConfig(V1);
      assertThat(reload(gw).json().getBoolean("changed")).as("the file as it was started").isFalse();
      assertThat(Scrape.of(gw).value("llmproxy_config_last_reload_successful")).isEqualTo(1);
    }
  }

  @Test
  void settingsBoundToTheProcessWaitForARestart(@TempDir Path dir) {
    try (TestGateway gw = start(dir, V1, INSTANT, INSTANT)) {
      int port = gw.port();
      gw.writeConfig(V1 + """
          upstream: {max_connections_per_backend: 8}
          limits: {max_body_size: 20B}
          """);
      Response r = reload(gw);
      assertThat(r.status()).as(r.text()).isEqualTo(200);
      assertThat(r.json().getJsonArray("restart_required").getList()).containsExactly("upstream");
      assertThat(r.json().getJsonArray("applied").getList()).containsExactly("limits");
      assertThat(gw.gateway.config().upstream().maxConnectionsPerBackend()).as("kept as started").isEqualTo(16_384);
      assertThat(gw.port()).isEqualTo(port);
      Response big = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      assertThat(big.status()).as("the new body cap, at once").isEqualTo(413);
    }
  }

  @Test
  void apiKeysFromTheFileAreReloadedAndTheOfficialClientUsesTheNewOne(@TempDir Path dir) {
    String yaml = """
        backends:
          - {url: "${SIM0}", name: a, models: ["m"]}
        auth: {enabled: true}
        admin: {token: "${ADMIN}"}
        data_dir: "%s"
        health_check: {enabled: false}
        api_keys:
          - {key: "%s", name: first}
        """;
    Path data = dir.resolve("data");
    try (TestGateway gw = start(dir, yaml.formatted(data, "sk-reload-first-000000000001"), INSTANT)) {
      assertThat(chat(gw, "sk-reload-first-000000000001", "m").status()).isEqualTo(200);

      gw.writeConfig(yaml.formatted(data, "sk-reload-second-00000000002"));
      Response r = reload(gw);
      assertThat(r.json().getJsonArray("applied").getList()).as(r.text()).containsExactly("api_keys");

      assertThat(chat(gw, "sk-reload-first-000000000001", "m").status()).as("removed from the file").isEqualTo(401);
      OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl(gw.url() + "/v1")
          .apiKey("sk-reload-second-00000000002").maxRetries(0).timeout(Duration.ofSeconds(10)).build();
      try {
        ChatCompletion c = client.chat().completions().create(ChatCompletionCreateParams.builder()
            .model("m").addUserMessage("hello").build());
        assertThat(c.choices()).isNotEmpty();
      } finally {
        client.close();
      }
    }
  }

  @Test
  void rateLimitsAreReloadedForTheNextRequest(@TempDir Path dir) {
    String yaml = """
        backends:
          - {url: "${SIM0}", name: a, models: ["m"]}
        auth: {enabled: true}
        rate_limit:
          enabled: true
          global: %s
          per_key: {requests_per_minute: %d}
        admin: {token: "${ADMIN}"}
        data_dir: "%s"
        health_check: {enabled: false}
        api_keys:
          - {key: "sk-reload-limits-00000000001", name: limited}
          - {key: "sk-reload-limits-00000000002", name: own, rate_limit: {requests_per_minute: 7}}
        """;
    Path data = dir.resolve("data");
    String key = "sk-reload-limits-00000000001";
    try (TestGateway gw = start(dir, yaml.formatted("{requests_per_second: 1000}", 100, data), INSTANT)) {
      assertThat(chat(gw, key, "m").header("x-ratelimit-limit-requests")).isEqualTo("100");

      // A gateway-wide limit of one request per 100 s, with room for two, and a lower default per key.
      gw.writeConfig(yaml.formatted("{requests_per_second: 0.01, burst_size: 2}", 2, data));
      Response r = reload(gw);
      assertThat(r.json().getJsonArray("applied").getList()).as(r.text()).containsExactly("rate_limit");
      assertThat(r.json().getJsonArray("restart_required").getList()).isEmpty();

      Response own = chat(gw, "sk-reload-limits-00000000002", "m");
      assertThat(own.header("x-ratelimit-limit-requests")).as("a key's own limit").isEqualTo("7");
      Response first = chat(gw, key, "m");
      assertThat(first.status()).isEqualTo(200);
      assertThat(first.header("x-ratelimit-limit-requests")).as("the new per_key default").isEqualTo("2");
      Response third = chat(gw, key, "m");
      assertThat(third.status()).isEqualTo(429);
      assertThat(third.json().getJsonObject("error").getString("message"))
          .contains("over its limit of 0.01 requests per second");
      assertThat(Scrape.of(gw).value("llmproxy_rate_limited_total", "scope", "global")).isEqualTo(1);
    }
  }

  private static Response chat(TestGateway gw, String key, String model) {
    return gw.client.post("/v1/chat/completions", TestClient.chat(model, false), "authorization", "Bearer " + key);
  }

  /**
   * SIGHUP to a real gateway process reloads its file, and does not stop it (the JVM's default); a
   * new {@code logging.level} applies to the log output the command line set up.
   */
  @Test
  void sighupReloadsTheConfigFile(@TempDir Path dir) throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      var sim = TestGateway.await(io.llmproxy.sim.Simulator.start(vertx, INSTANT));
      Path config = dir.resolve("config.yaml");
      String yaml = """
          listen: "127.0.0.1:0"
          backends:
            - {url: "%s", name: a, models: ["m"]}
          health_check: {enabled: false}
          logging: {format: text, level: info}
          """.formatted(sim.url());
      Files.writeString(config, yaml);
      try (JavaProcess gateway = JavaProcess.start("io.llmproxy.cli.Main", "serve", "--config", config.toString())) {
        String listening = gateway.awaitLine(Pattern.compile("llmproxy listening on [^ ]+:(\\d+) "), Duration.ofSeconds(30));
        Matcher m = Pattern.compile(":(\\d+) ").matcher(listening.substring(listening.indexOf("listening on")));
        assertThat(m.find()).isTrue();
        TestClient client = TestClient.to(vertx, "127.0.0.1", Integer.parseInt(m.group(1)));
        assertThat(client.post("/v1/chat/completions", TestClient.chat("alias", false)).status()).isEqualTo(404);

        Files.writeString(config, yaml + "routing: {model_mapping: {alias: m}}\n");
        new ProcessBuilder("kill", "-HUP", Long.toString(gateway.pid())).start().waitFor();
        gateway.awaitLine(Pattern.compile("config reloaded from .*: routing"), Duration.ofSeconds(10));

        assertThat(client.post("/v1/chat/completions", TestClient.chat("alias", false)).status()).isEqualTo(200);
        assertThat(gateway.isAlive()).as("SIGHUP does not stop the gateway").isTrue();
        assertThat(gateway.lines()).noneMatch(l -> l.contains("stopping"));

        // logging.level is taken at once: at warn, the reload's own INFO line is not written, and
        // the WARN that follows it (a change that waits for a restart) is.
        Files.writeString(config, yaml.replace("level: info", "level: warn") + "routing: {model_mapping: {alias: m}}\n"
            + "upstream: {max_connections_per_backend: 8}\n");
        new ProcessBuilder("kill", "-HUP", Long.toString(gateway.pid())).start().waitFor();
        gateway.awaitLine(Pattern.compile("WARN .*config reload: upstream changed"), Duration.ofSeconds(10));
        assertThat(gateway.lines()).filteredOn(l -> l.contains("config reloaded from")).hasSize(1);
      }
    } finally {
      TestGateway.await(vertx.close());
    }
  }
}
