package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.Scrape.Series;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.http.HttpClientRequest;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code GET /metrics} after a mix of requests (SPEC §7): the metric names and labels exist, and
 * every metric and label the documented Prometheus alert rules (seed 004, "监控告警") use is exported.
 */
class MetricsTest {

  private static final String YAML = """
      backends:
        - url: "${SIM0}"
          name: flaky
          models: ["retry-model", "flaky-only"]
        - url: "${SIM1}"
          name: good
          region: north
          models: ["sim-model", "retry-model"]
      load_balance_strategy: round_robin
      routing:
        retry: {initial_wait: 1ms, max_wait: 2ms}
      health_check: {enabled: false}
      """;

  private static TestGateway gw;
  private static List<Series> scrape;

  @BeforeAll
  static void trafficThenScrape() {
    SimulatorOptions base = SimulatorOptions.defaults()
        .withTtft(Duration.ofMillis(20)).withItl(Duration.ofMillis(5)).withTokens(8);
    gw = TestGateway.start(YAML,
        base.withName("flaky").withModels("retry-model", "flaky-only").withFail(1.0, 503),
        base.withName("good").withModels("sim-model", "retry-model"));
    TestClient c = gw.client;
    int sent = 0;

    // a non-streaming request
    assertThat(c.post("/v1/chat/completions", TestClient.chat("sim-model", false)).status()).isEqualTo(200);
    sent++;

    // a streaming one that asks for usage
    TestClient.Streamed s = c.stream("/v1/chat/completions", "{\"model\":\"sim-model\",\"stream\":true,"
        + "\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assertThat(s.status()).isEqualTo(200);
    assertThat(s.events()).last().extracting(TestClient.Event::data).isEqualTo("[DONE]");
    sent++;

    // an unknown model
    assertThat(c.post("/v1/chat/completions", TestClient.chat("no-such-model", false)).status()).isEqualTo(404);
    sent++;

    // retried: round robin over flaky (always 503) and good; whichever request starts on flaky is
    // retried on good. Two requests are enough for round robin; the bound of 4 only keeps a wrong build from looping.
    for (int i = 0; i < 4 && value(scrapeNow(), "llmproxy_retries_total", Map.of("reason", "status_5xx")) < 1; i++) {
      TestClient.Response r = c.post("/v1/chat/completions", TestClient.chat("retry-model", false));
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("good");
      sent++;
    }

    // a 5xx the client sees: flaky is the only candidate, every retry fails, its 503 goes back
    assertThat(c.post("/v1/chat/completions", TestClient.chat("flaky-only", false)).status()).isEqualTo(503);
    sent++;

    // a client that leaves mid-stream
    HttpClientRequest open = c.open("/v1/chat/completions",
        "{\"model\":\"sim-model\",\"stream\":true,\"max_tokens\":2000,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.sim(1).requests().stream()
        .anyMatch(r -> r.stream() && r.chunksSent() >= 3 && !r.completed()));
    open.connection().close();
    sent++;
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.sim(1).requests().stream()
        .anyMatch(RequestRecord::clientDisconnected));
    await().atMost(Duration.ofSeconds(5)).until(() ->
        value(scrapeNow(), "llmproxy_cancelled_upstream_total", Map.of("reason", "client_disconnect")) >= 1
            && value(scrapeNow(), "llmproxy_requests_total", Map.of("status", "499")) >= 1);

    // each request is counted as it ends, on the event loop that served it
    double expected = sent;
    await().atMost(Duration.ofSeconds(5)).until(() ->
        value(scrapeNow(), "llmproxy_requests_total", Map.of()) == expected);
    scrape = scrapeNow();
  }

  @AfterAll
  static void stop() {
    if (gw != null) {
      gw.close();
    }
  }

  // ---- the scrape

  private static List<Series> scrapeNow() {
    TestClient.Response r = gw.client.get("/metrics");
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.header("content-type")).startsWith("text/plain");
    return Scrape.parse(r.text());
  }

  private static List<Series> series(List<Series> all, String name) {
    return all.stream().filter(s -> s.name().equals(name)).toList();
  }

  /** The sum over the series of {@code name} whose labels include {@code match}. */
  private static double value(List<Series> all, String name, Map<String, String> match) {
    return all.stream()
        .filter(s -> s.name().equals(name) && s.labels().entrySet().containsAll(match.entrySet()))
        .mapToDouble(Series::value).sum();
  }

  // ---- the metrics

  @Test
  void everyDocumentedMetricIsExported() {
    for (String name : List.of("llmproxy_requests_total", "llmproxy_latency_ms_bucket", "llmproxy_ttft_ms_bucket",
        "llmproxy_backend_ttft_ms_bucket", "llmproxy_overhead_ms_bucket", "llmproxy_tokens_total",
        "llmproxy_upstream_attempts_total", "llmproxy_cancelled_upstream_total", "llmproxy_retries_total",
        "llmproxy_backend_up", "llmproxy_backend_inflight", "jvm_memory_used_bytes")) {
      assertThat(series(scrape, name)).as(name).isNotEmpty();
    }
  }

  @Test
  void requestsTotalHasItsLabels() {
    List<Series> requests = series(scrape, "llmproxy_requests_total");
    assertThat(requests).allSatisfy(s ->
        assertThat(s.labels()).containsKeys("model", "backend", "status", "stream"));
    assertThat(value(scrape, "llmproxy_requests_total",
        Map.of("model", "sim-model", "backend", "good", "status", "200", "stream", "false"))).isEqualTo(1);
    assertThat(value(scrape, "llmproxy_requests_total",
        Map.of("model", "sim-model", "backend", "good", "status", "200", "stream", "true"))).isEqualTo(1);
    assertThat(value(scrape, "llmproxy_requests_total", Map.of("status", "404", "backend", "none"))).isEqualTo(1);
    assertThat(series(scrape, "llmproxy_requests_total")).as("a name no backend serves never becomes a label")
        .noneMatch(s -> "no-such-model".equals(s.labels().get("model")));
    assertThat(value(scrape, "llmproxy_requests_total", Map.of("status", "404", "model", "other"))).isEqualTo(1);
    assertThat(value(scrape, "llmproxy_requests_total",
        Map.of("model", "flaky-only", "backend", "flaky", "status", "503"))).isEqualTo(1);
    assertThat(value(scrape, "llmproxy_requests_total",
        Map.of("model", "sim-model", "status", "499", "stream", "true"))).isEqualTo(1);
    assertThat(value(scrape, "llmproxy_requests_total", Map.of("model", "retry-model", "status", "200")))
        .isBetween(1.0, 4.0);
  }

  @Test
  void histogramsHaveBuckets() {
    for (String h : List.of("llmproxy_latency_ms", "llmproxy_ttft_ms", "llmproxy_backend_ttft_ms",
        "llmproxy_overhead_ms")) {
      List<Series> buckets = series(scrape, h + "_bucket");
      assertThat(buckets).as(h).isNotEmpty().allSatisfy(s -> assertThat(s.labels()).containsKey("le"));
      assertThat(buckets).as(h + " +Inf").anySatisfy(s -> assertThat(s.labels()).containsEntry("le", "+Inf"));
      assertThat(series(scrape, h + "_count")).as(h + "_count").isNotEmpty();
      assertThat(series(scrape, h + "_sum")).as(h + "_sum").isNotEmpty();
    }
    assertThat(series(scrape, "llmproxy_latency_ms_bucket"))
        .allSatisfy(s -> assertThat(s.labels()).containsKeys("model", "stream"));
    assertThat(series(scrape, "llmproxy_backend_ttft_ms_bucket"))
        .allSatisfy(s -> assertThat(s.labels()).containsKeys("backend", "model"));
  }

  /** Counters whose labels are known are exported at 0 before their first event, so rate() over them works. */
  @Test
  void refusalCountersStartAtZeroWithEveryLabel() {
    for (String[] scopeKind : new String[][] {{"global", "requests"}, {"key", "requests"}, {"key", "tokens"},
        {"key", "concurrency"}}) {
      assertThat(series(scrape, "llmproxy_rate_limited_total"))
          .anySatisfy(s -> assertThat(s.labels()).containsEntry("scope", scopeKind[0]).containsEntry("kind", scopeKind[1]));
    }
    for (String reason : List.of("missing", "invalid", "disabled", "expired", "ip_not_allowed", "model_not_allowed")) {
      assertThat(value(scrape, "llmproxy_auth_failures_total", Map.of("reason", reason))).as(reason).isZero();
      assertThat(series(scrape, "llmproxy_auth_failures_total"))
          .anySatisfy(s -> assertThat(s.labels()).containsEntry("reason", reason));
    }
    assertThat(value(scrape, "llmproxy_rate_limited_total", Map.of())).isZero();
  }

  @Test
  void tokensAttemptsRetriesCancellations() {
    assertThat(value(scrape, "llmproxy_tokens_total", Map.of("type", "prompt"))).isPositive();
    // the non-streaming, the streaming one with usage, and the retried ones: 8 tokens each
    assertThat(value(scrape, "llmproxy_tokens_total",
        Map.of("type", "completion", "model", "sim-model", "backend", "good"))).isEqualTo(16);

    assertThat(value(scrape, "llmproxy_upstream_attempts_total", Map.of("outcome", "won"))).isPositive();
    assertThat(value(scrape, "llmproxy_upstream_attempts_total", Map.of("backend", "flaky", "outcome", "failed")))
        .isPositive();
    assertThat(series(scrape, "llmproxy_upstream_attempts_total"))
        .allSatisfy(s -> assertThat(s.labels()).containsKeys("backend", "outcome"));

    assertThat(value(scrape, "llmproxy_cancelled_upstream_total", Map.of("reason", "client_disconnect")))
        .isGreaterThanOrEqualTo(1);
    assertThat(value(scrape, "llmproxy_upstream_attempts_total", Map.of("backend", "good", "outcome", "cancelled")))
        .as("the stream the client left had been committed, but it did not win: it was cancelled").isEqualTo(1);
    assertThat(value(scrape, "llmproxy_retries_total", Map.of("reason", "status_5xx"))).isGreaterThanOrEqualTo(1);
  }

  @Test
  void backendGauges() {
    assertThat(series(scrape, "llmproxy_backend_up")).extracting(s -> s.labels().get("backend"))
        .containsExactlyInAnyOrder("flaky", "good");
    assertThat(value(scrape, "llmproxy_backend_up", Map.of("backend", "good"))).isEqualTo(1);
    assertThat(series(scrape, "llmproxy_backend_inflight")).extracting(s -> s.labels().get("backend"))
        .containsExactlyInAnyOrder("flaky", "good");
    assertThat(value(scrape, "llmproxy_backend_info", Map.of("backend", "good", "region", "north"))).isEqualTo(1);
    assertThat(value(scrape, "llmproxy_backend_info", Map.of("backend", "flaky", "region", ""))).isEqualTo(1);
  }

  /**
   * Each upstream request is one attempt, counted once, and gives its in-flight slot back once. No
   * backend reset a connection here, so no retry has the reason "reset".
   */
  @Test
  void attemptsAreCountedOnceAndSlotsAreGivenBack() {
    long upstreamRequests = gw.sims.stream()
        .flatMap(sim -> sim.requests().stream())
        .filter(r -> r.method().equals("POST"))
        .count();
    List<Series> now = scrapeNow();

    assertThat(series(now, "llmproxy_backend_inflight"))
        .allSatisfy(s -> assertThat(s.value()).as(s.toString()).isZero());
    assertThat(value(now, "llmproxy_upstream_attempts_total", Map.of())).isEqualTo((double) upstreamRequests);
    assertThat(value(now, "llmproxy_retries_total", Map.of("reason", "reset"))).isZero();
    assertThat(value(now, "llmproxy_cancelled_upstream_total", Map.of("reason", "hedge_loser")))
        .as("no hedging is configured").isZero();
  }

  // ---- the documented alert rules

  private static final Pattern RANGE = Pattern.compile("\\[[^\\]]*\\]");
  /** Label lists of aggregations and vector matching: label names, not metrics. */
  private static final Pattern LABEL_LIST = Pattern.compile(
      "\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)", Pattern.CASE_INSENSITIVE);
  private static final Pattern SELECTOR = Pattern.compile("([a-zA-Z_:][a-zA-Z0-9_:]*)?\\s*\\{([^}]*)\\}");
  private static final Pattern MATCHER = Pattern.compile("\\s*([a-zA-Z_][a-zA-Z0-9_]*)\\s*(=~|!~|!=|=)\\s*\"((?:[^\"\\\\]|\\\\.)*)\"\\s*,?");
  private static final Pattern IDENT = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");
  private static final Set<String> KEYWORDS = Set.of("by", "without", "on", "ignoring", "group_left",
      "group_right", "bool", "offset", "and", "or", "unless", "inf", "nan");

  /** One metric with the label matchers a PromQL expression applies to it. */
  record Use(String metric, List<String[]> matchers) {}

  /** The metrics an expression reads, each with its matchers {label, op, value}. */
  static List<Use> uses(String expr) {
    String e = LABEL_LIST.matcher(RANGE.matcher(expr).replaceAll(" ")).replaceAll(" ");
    List<Use> uses = new ArrayList<>();
    Matcher sel = SELECTOR.matcher(e);
    StringBuilder rest = new StringBuilder();
    while (sel.find()) {
      List<String[]> matchers = new ArrayList<>();
      Matcher m = MATCHER.matcher(sel.group(2));
      while (m.find()) {
        matchers.add(new String[] {m.group(1), m.group(2), m.group(3)});
      }
      String name = sel.group(1);
      if (name == null) {
        name = matchers.stream().filter(x -> x[0].equals("__name__")).map(x -> x[2]).findFirst().orElseThrow();
      }
      uses.add(new Use(name, matchers));
      sel.appendReplacement(rest, " ");
    }
    sel.appendTail(rest);
    Matcher id = IDENT.matcher(rest);
    while (id.find()) {
      String word = id.group();
      int after = id.end();
      while (after < rest.length() && rest.charAt(after) == ' ') {
        after++;
      }
      boolean function = after < rest.length() && rest.charAt(after) == '(';
      boolean number = id.start() > 0 && Character.isDigit(rest.charAt(id.start() - 1));
      if (!function && !number && !KEYWORDS.contains(word.toLowerCase(java.util.Locale.ROOT))) {
        uses.add(new Use(word, List.of()));
      }
    }
    return uses;
  }

  @Test
  void theExpressionParserFindsMetricsAndMatchers() {
    List<Use> u = uses("sum by (model) (rate(llmproxy_requests_total{status=~\"5..\", stream!=\"x\"}[5m])) "
        + "/ on(model) histogram_quantile(0.99, rate(llmproxy_latency_ms_bucket[5m])) > 5000");
    assertThat(u).extracting(Use::metric).containsExactly("llmproxy_requests_total", "llmproxy_latency_ms_bucket");
    assertThat(u.get(0).matchers()).hasSize(2);
    assertThat(u.get(0).matchers().get(0)).containsExactly("status", "=~", "5..");
  }

  @Test
  void everyMetricAndLabelTheSeedAlertRulesUseIsExported() throws IOException {
    JsonNode rules;
    try (InputStream in = MetricsTest.class.getResourceAsStream("/seeds/004-alert-rules.yaml")) {
      assertThat(in).isNotNull();
      rules = new ObjectMapper(new YAMLFactory()).readTree(in);
    }
    List<String> exprs = new ArrayList<>();
    for (JsonNode group : rules.path("groups")) {
      for (JsonNode rule : group.path("rules")) {
        exprs.add(rule.path("expr").asText());
      }
    }
    assertThat(exprs).hasSize(2);

    int checked = 0;
    for (String expr : exprs) {
      List<Use> uses = uses(expr);
      assertThat(uses).as(expr).isNotEmpty();
      for (Use use : uses) {
        List<Series> exported = series(scrape, use.metric());
        assertThat(exported).as("%s: metric %s", expr, use.metric()).isNotEmpty();
        if (use.metric().endsWith("_bucket")) {
          assertThat(exported).as("%s: %s has le", expr, use.metric())
              .allSatisfy(s -> assertThat(s.labels()).containsKey("le"));
        }
        for (String[] m : use.matchers()) {
          String label = m[0];
          assertThat(exported).as("%s: %s has label %s", expr, use.metric(), label)
              .anySatisfy(s -> assertThat(s.labels()).containsKey(label));
          if (m[1].equals("=~")) {
            Pattern p = Pattern.compile(m[2]);
            assertThat(exported).as("%s: some %s{%s=~\"%s\"}", expr, use.metric(), label, m[2])
                .anySatisfy(s -> assertThat(s.labels().get(label)).isNotNull().matches(p));
          } else if (m[1].equals("=")) {
            assertThat(exported).as("%s: some %s{%s=\"%s\"}", expr, use.metric(), label, m[2])
                .anySatisfy(s -> assertThat(s.labels()).containsEntry(label, m[2]));
          }
          checked++;
        }
      }
    }
    assertThat(checked).as("label matchers checked").isEqualTo(1);
  }

  /**
   * A backend with no models globs takes any name, so clients' junk names reach it; it refuses them
   * (404), and they take no label of their own: a real model served after 250 of them keeps its name.
   */
  @Test
  void junkModelNamesABackendRefusesDoNotUseUpTheModelLabels() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            health_check: {enabled: false}
            """, SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1)
            .withModels("real-model").withStrictModels(true))) {
      for (int i = 0; i < 250; i++) {
        assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("junk-" + i, false)).status()).isEqualTo(404);
      }
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("real-model", false)).status()).isEqualTo(200);
      String scrape = gw.gateway.metrics().scrape();
      assertThat(scrape).contains("model=\"real-model\"").doesNotContain("junk-");
      assertThat(scrape).containsPattern("llmproxy_requests_total\\{[^}]*model=\"other\"[^}]*status=\"404\"[^}]*} 250.0");
    }
  }
}
