package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.llmproxy.auth.ApiKey;
import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.QuotaPeriod;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.store.StoredKey;
import io.llmproxy.store.UsageTotal;
import io.llmproxy.testing.Logs;
import io.llmproxy.testing.ManualTimeMeter;
import io.llmproxy.testing.MutableClock;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.LoggerFactory;

/**
 * Issue 7, acceptance 2: the seed's scenarios 2 (an internal assistant: departments with daily
 * quotas and address ranges) and 3 (a model provider: customers with monthly quotas, allowed models,
 * expiry and model mapping) run as the docs write them. The YAML is loaded unchanged but for what a
 * test must change to run at all: the backend and webhook URLs point at in-process simulators and a
 * local receiver, {@code listen} is a free loopback port, and {@code data_dir} is a temporary
 * directory. Scenario 2 also gets {@code auth.trusted_proxies: ["127.0.0.1/32"]}: its keys allow
 * only 10.0.x.0/24 ranges and every test request comes from 127.0.0.1, so the department addresses
 * are given in {@code X-Forwarded-For} through a trusted proxy, as behind the company's load
 * balancer. Scenario 3's customer keys are made as its {@code POST /admin/api-keys} example makes
 * them (the key registry the admin API writes to; the YAML has no admin token).
 */
class SeedScenariosTest {
  @TempDir
  Path dataDir;

  private final MutableClock clock = MutableClock.at("2026-01-14T10:00:00Z");
  private final ManualTimeMeter meter = new ManualTimeMeter();
  private final Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
  private final ListAppender<ILoggingEvent> logs = new ListAppender<>();
  private Vertx receiverVertx;
  private HttpServer receiver;
  private final List<Buffer> received = new java.util.concurrent.CopyOnWriteArrayList<>();
  private TestGateway gw;

  @BeforeEach
  void start() {
    logs.start();
    root.addAppender(logs);
    receiverVertx = Vertx.vertx();
    receiver = TestGateway.await(receiverVertx.createHttpServer()
        .requestHandler(req -> req.body().onSuccess(b -> {
          received.add(b);
          req.response().setStatusCode(200).end();
        })).listen(0, "127.0.0.1"));
  }

  @AfterEach
  void stop() {
    try {
      if (gw != null) {
        gw.close();
      }
    } finally {
      root.detachAppender(logs);
      TestGateway.await(receiverVertx.close());
    }
  }

  private String receiverUrl(String path) {
    return "http://127.0.0.1:" + receiver.actualPort() + path;
  }

  private static String resource(String name) {
    try (InputStream in = SeedScenariosTest.class.getResourceAsStream("/" + name)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String adapt(String seed, Map<String, String> replacements) {
    return adapt(seed, replacements, null, null);
  }

  /**
   * The seed with each key of {@code replacements} replaced everywhere (each must occur), the line
   * {@code inserted} (when not null) put after the first line that is {@code after}, and
   * {@code data_dir} added; checks that no other line changed.
   */
  private static String adapt(String seed, Map<String, String> replacements, String after, String inserted) {
    String yaml = seed;
    for (Map.Entry<String, String> r : replacements.entrySet()) {
      assertThat(yaml).as("the seed has %s", r.getKey()).contains(r.getKey());
      yaml = yaml.replace(r.getKey(), r.getValue());
    }
    List<String> before = seed.lines().toList();
    List<String> lines = new ArrayList<>(yaml.lines().toList());
    if (inserted != null) {
      assertThat(lines).contains(after);
      lines.add(lines.indexOf(after) + 1, inserted);
      yaml = String.join("\n", lines) + "\n";
      lines.remove(inserted);
    }
    List<String> adapted = lines;
    int changed = 0;
    assertThat(adapted).hasSameSizeAs(before);
    for (int i = 0; i < before.size(); i++) {
      if (!before.get(i).equals(adapted.get(i))) {
        changed++;
        String line = before.get(i);
        assertThat(replacements.keySet()).as("line %d changed: %s", i + 1, line).anyMatch(line::contains);
      }
    }
    assertThat(changed).isPositive();
    return yaml + "\ndata_dir: \"${DATA}\"\n";
  }

  private List<ILoggingEvent> events(Level level) {
    return Logs.snapshot(logs).stream().filter(e -> e.getLevel() == level).toList();
  }

  private static Response chat(TestGateway g, String key, String model, String... headers) {
    List<String> h = new ArrayList<>(List.of("authorization", "Bearer " + key));
    h.addAll(List.of(headers));
    return g.client.post("/v1/chat/completions", TestClient.chat(model, false), h.toArray(String[]::new));
  }

  // ---- scenario 2: an internal AI assistant (TGI, departments)

  private static final String DEV = "sk-llmproxy-dev-team-001";
  private static final String PRODUCT = "sk-llmproxy-product-team-001";
  private static final String MARKETING = "sk-llmproxy-marketing-team-001";

  private TestGateway scenario2(SimulatorOptions sim) {
    String yaml = adapt(resource("seeds/003-scenario2.yaml"), ordered(
        "listen: \":8000\"", "listen: \"127.0.0.1:0\"",
        "http://tgi-1.internal:8080", "${SIM0}",
        "http://tgi-2.internal:8080", "${SIM1}",
        "http://finance.internal/api/ai-usage", receiverUrl("/api/ai-usage")),
        "auth:", "  trusted_proxies: [\"127.0.0.1/32\"]  # added by the test: requests come through a trusted proxy");
    return TestGateway.builder(yaml).ownListen().vars(Map.of("DATA", dataDir.toString())).clock(clock).timeMeter(meter)
        .start(sim.withName("tgi-1"), sim.withName("tgi-2"));
  }

  private static Map<String, String> ordered(String... pairs) {
    Map<String, String> m = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      m.put(pairs[i], pairs[i + 1]);
    }
    return m;
  }

  private static final SimulatorOptions FAST = SimulatorOptions.defaults().withModels("llama-3-70b")
      .withTtft(Duration.ofMillis(1)).withItl(Duration.ZERO).withTokens(4);

  @Test
  void scenario2_departmentsAreKeptToTheirAddressRanges() {
    gw = scenario2(FAST);
    Map<String, String> ranges = Map.of(DEV, "10.0.1.", PRODUCT, "10.0.2.", MARKETING, "10.0.3.");
    for (Map.Entry<String, String> d : ranges.entrySet()) {
      assertThat(chat(gw, d.getKey(), "llama-3-70b", "x-forwarded-for", d.getValue() + "17").status()).isEqualTo(200);
      for (String other : ranges.values()) {
        if (!other.equals(d.getValue())) {
          Response r = chat(gw, d.getKey(), "llama-3-70b", "x-forwarded-for", other + "17");
          assertThat(r.status()).isEqualTo(403);
          assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("ip_not_allowed");
        }
      }
      // straight from a machine outside every range (the proxy itself)
      assertThat(chat(gw, d.getKey(), "llama-3-70b").status()).isEqualTo(403);
    }
    assertThat(Scrape.of(gw).value("llmproxy_auth_failures_total", "reason", "ip_not_allowed")).isEqualTo(9);
    // the load is spread over both TGI servers (weight 5 each)
    assertThat(gw.posts(0)).isNotEmpty();
    assertThat(gw.posts(1)).isNotEmpty();
    assertThat(events(Level.ERROR)).isEmpty();
  }

  @Test
  void scenario2_dailyQuotasPerDepartment() {
    gw = scenario2(FAST);
    Map<String, Long> quotas = Map.of(DEV, 500_000L, PRODUCT, 200_000L, MARKETING, 100_000L);
    quotas.forEach((secret, quota) -> {
      ApiKey k = gw.gateway.access().keys().find(secret);
      assertThat(k.quota()).isEqualTo(quota);
      assertThat(k.period()).isEqualTo(QuotaPeriod.DAILY);
    });
    // one long document uses the product department's day: about 200,000 prompt tokens
    String longPrompt = "{\"model\":\"llama-3-70b\",\"messages\":[{\"role\":\"user\",\"content\":\""
        + "word ".repeat(160_010) + "\"}]}";
    Response big = gw.client.post("/v1/chat/completions", longPrompt, "authorization", "Bearer " + PRODUCT,
        "x-forwarded-for", "10.0.2.8");
    assertThat(big.status()).isEqualTo(200);
    long used = big.json().getJsonObject("usage").getLong("total_tokens");
    assertThat(used).isGreaterThanOrEqualTo(200_000).isLessThan(500_000);
    await().atMost(Duration.ofSeconds(5)).until(() ->
        gw.gateway.access().quotas().used(gw.gateway.access().keys().find(PRODUCT)) == used);
    Response refused = chat(gw, PRODUCT, "llama-3-70b", "x-forwarded-for", "10.0.2.8");
    assertThat(refused.status()).isEqualTo(429);
    assertThat(refused.json().getJsonObject("error").getString("code")).isEqualTo("insufficient_quota");
    assertThat(refused.header("retry-after")).isEqualTo("50400");
    // the same text is within the development department's larger day
    assertThat(gw.client.post("/v1/chat/completions", longPrompt, "authorization", "Bearer " + DEV,
        "x-forwarded-for", "10.0.1.8").status()).isEqualTo(200);
    assertThat(chat(gw, DEV, "llama-3-70b", "x-forwarded-for", "10.0.1.8").status()).isEqualTo(200);
    assertThat(chat(gw, MARKETING, "llama-3-70b", "x-forwarded-for", "10.0.3.8").status()).isEqualTo(200);
    // internal accounting: each department's usage on its own, per day
    LocalDate day = LocalDate.parse("2026-01-14");
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
      Map<String, Long> requests = new LinkedHashMap<>();
      for (String secret : List.of(DEV, PRODUCT, MARKETING)) {
        ApiKey k = gw.gateway.access().keys().find(secret);
        requests.put(k.userId(), gw.gateway.store().usage(k.id(), day, day).stream().mapToLong(UsageTotal::requests).sum());
      }
      assertThat(requests).isEqualTo(Map.of(
          "dept_dev", 2L, "dept_product", 1L, "dept_marketing", 1L));
    });
    // a new day (UTC)
    clock.set("2026-01-15T00:00:00Z");
    assertThat(chat(gw, PRODUCT, "llama-3-70b", "x-forwarded-for", "10.0.2.8").status()).isEqualTo(200);
  }

  @Test
  void scenario2_aHundredRequestsAMinuteAndFiveAtOnce() {
    gw = scenario2(FAST);
    for (int i = 0; i < 100; i++) {
      assertThat(chat(gw, DEV, "llama-3-70b", "x-forwarded-for", "10.0.1.9").status()).as("request %d", i + 1).isEqualTo(200);
    }
    Response refused = chat(gw, DEV, "llama-3-70b", "x-forwarded-for", "10.0.1.9");
    assertThat(refused.status()).isEqualTo(429);
    assertThat(refused.json().getJsonObject("error").getString("code")).isEqualTo("rate_limit_exceeded");
    assertThat(refused.header("retry-after")).isEqualTo("1"); // 0.6 s to the next of 100 a minute
    assertThat(refused.header("x-ratelimit-limit-requests")).isEqualTo("100");
    // each department has its own budget
    assertThat(chat(gw, PRODUCT, "llama-3-70b", "x-forwarded-for", "10.0.2.9").status()).isEqualTo(200);
    meter.advance(Duration.ofMillis(600));
    assertThat(chat(gw, DEV, "llama-3-70b", "x-forwarded-for", "10.0.1.9").status()).isEqualTo(200);

    // five streams at once, not six
    SimulatorOptions slow = FAST.withItl(Duration.ofMillis(50)).withTokens(2000);
    gw.sim(0).options(slow);
    gw.sim(1).options(slow);
    meter.advance(Duration.ofMinutes(1));
    List<HttpClientRequest> open = new ArrayList<>();
    try {
      for (int i = 0; i < 5; i++) {
        open.add(gw.client.open("/v1/chat/completions", TestClient.chat("llama-3-70b", true),
            "authorization", "Bearer " + MARKETING, "x-forwarded-for", "10.0.3.9"));
      }
      ApiKey marketing = gw.gateway.access().keys().find(MARKETING);
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.access().limits().inflight(marketing) == 5);
      Response sixth = chat(gw, MARKETING, "llama-3-70b", "x-forwarded-for", "10.0.3.9");
      assertThat(sixth.status()).isEqualTo(429);
      assertThat(sixth.json().getJsonObject("error").getString("code")).isEqualTo("concurrency_limit_exceeded");
      assertThat(sixth.header("retry-after")).isNotBlank();
      open.remove(0).connection().close();
      await().atMost(Duration.ofSeconds(2)).until(() -> gw.gateway.access().limits().inflight(marketing) == 4);
    } finally {
      open.forEach(r -> r.connection().close());
    }
  }

  @Test
  void scenario2_usageHookAndMetricsAreConfigured() {
    gw = scenario2(FAST);
    var hook = gw.gateway.config().usageHook();
    assertThat(hook.enabled()).isTrue();
    assertThat(hook.url()).isEqualTo(URI.create(receiverUrl("/api/ai-usage")));
    assertThat(hook.timeout()).isEqualTo(Duration.ofSeconds(2));
    assertThat(hook.retry()).isEqualTo(3);
    assertThat(gw.gateway.config().auth().trustedProxies()).containsExactly("127.0.0.1/32");
    assertThat(chat(gw, DEV, "llama-3-70b", "x-forwarded-for", "10.0.1.10").status()).isEqualTo(200);
    // usage is recorded for the hook (its delivery is the usage pipeline's, tested there)
    ApiKey dev = gw.gateway.access().keys().find(DEV);
    await().atMost(Duration.ofSeconds(5)).until(() ->
        gw.gateway.store().usage(dev.id(), null, null).stream().mapToLong(UsageTotal::requests).sum() == 1);
    Response metrics = gw.client.get("/metrics");
    assertThat(metrics.status()).isEqualTo(200);
    assertThat(metrics.text()).contains("llmproxy_requests_total{", "llmproxy_latency_ms_bucket{");
    assertThat(events(Level.WARN)).isEmpty();
  }

  // ---- scenario 3: a model provider (vLLM, customers)

  private static final List<String> SCENARIO3_BACKENDS = List.of(
      "vllm-llama70b-1", "vllm-llama70b-2", "vllm-llama70b-3", "vllm-llama70b-4",
      "vllm-llama8b-1", "vllm-llama8b-2", "vllm-mistral-1", "vllm-mistral-2",
      "vllm-qwen-1", "vllm-qwen-2", "vllm-qwen-3", "vllm-qwen-4");

  private static String servedModel(String backend) {
    return backend.contains("llama70b") ? "llama-3-70b-instruct" : backend.contains("llama8b") ? "llama-3-8b-instruct"
        : backend.contains("mistral") ? "mistral-7b-instruct-v0.2" : "qwen-72b-chat";
  }

  private TestGateway scenario3() {
    Map<String, String> replacements = new LinkedHashMap<>();
    replacements.put("listen: \":8000\"", "listen: \"127.0.0.1:0\"");
    List<SimulatorOptions> sims = new ArrayList<>();
    for (int i = 0; i < SCENARIO3_BACKENDS.size(); i++) {
      String name = SCENARIO3_BACKENDS.get(i);
      replacements.put("\"http://" + name + ":8000\"", "\"${SIM" + i + "}\"");
      sims.add(FAST.withName(name).withModels(servedModel(name)).withStrictModels(true));
    }
    replacements.put("http://billing-api:8080/api/v1/usage", receiverUrl("/api/v1/usage"));
    String yaml = adapt(resource("seeds/003-scenario3.yaml"), replacements);
    return TestGateway.builder(yaml).ownListen().vars(Map.of("DATA", dataDir.toString())).clock(clock).timeMeter(meter)
        .start(sims.toArray(SimulatorOptions[]::new));
  }

  /** A customer key as the scenario's POST /admin/api-keys example makes it. */
  private String customer(String name, String userId, long quota) {
    StoredKey draft = new StoredKey(null, null, null, name, userId, KeyStatus.ACTIVE, quota, QuotaPeriod.MONTHLY,
        List.of(), List.of("llama-3-70b", "llama-3-8b"), Instant.parse("2026-12-31T23:59:59Z"), null, null, null);
    String secret = gw.gateway.access().keys().create(draft, null).secret();
    assertThat(secret).startsWith("sk-llmproxy-");
    return secret;
  }

  /** The scenario's name of the backend that answered (its backends have no name: host:port). */
  private String answeredBy(Response r) {
    String hostPort = r.header("x-llmproxy-backend");
    for (int i = 0; i < SCENARIO3_BACKENDS.size(); i++) {
      if (hostPort.equals("127.0.0.1:" + gw.sim(i).port())) {
        return SCENARIO3_BACKENDS.get(i);
      }
    }
    throw new AssertionError("no backend " + hostPort);
  }

  private int backendIndexOf(String model) {
    for (int i = 0; i < SCENARIO3_BACKENDS.size(); i++) {
      for (RequestRecord r : gw.posts(i)) {
        if (r.model().equals(model)) {
          return i;
        }
      }
    }
    return -1;
  }

  @Test
  void scenario3_redisStorageFallsBackToTheEmbeddedStoreWithAWarning() {
    gw = scenario3();
    List<String> warnings = events(Level.WARN).stream().map(ILoggingEvent::getFormattedMessage).toList();
    assertThat(warnings).contains(
        "auth.storage: redis is not supported yet; keys and quota counters are kept in " + dataDir,
        "rate_limit.storage: redis is not supported yet; each gateway limits on its own (memory)");
    assertThat(events(Level.ERROR)).isEmpty();
    assertThat(dataDir.resolve("llmproxy.mv")).exists();
    // and the keys made at runtime live there, across a restart
    String a = customer("客户A - 生产环境", "customer_a", 10_000_000);
    assertThat(chat(gw, a, "llama-3-70b").status()).isEqualTo(200);
    gw.close();
    gw = null;
    gw = scenario3();
    assertThat(chat(gw, a, "llama-3-70b").status()).isEqualTo(200);
    ApiKey k = gw.gateway.access().keys().find(a);
    assertThat(k.name()).isEqualTo("客户A - 生产环境");
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.access().quotas().used(k) > 0);
  }

  @Test
  void scenario3_customersGetTheirModelsUnderFriendlyNames() {
    gw = scenario3();
    String a = customer("客户A - 生产环境", "customer_a", 10_000_000);
    Response r70 = chat(gw, a, "llama-3-70b");
    assertThat(r70.status()).isEqualTo(200);
    assertThat(answeredBy(r70)).startsWith("vllm-llama70b-");
    int i70 = backendIndexOf("llama-3-70b-instruct");
    assertThat(SCENARIO3_BACKENDS.get(i70)).startsWith("vllm-llama70b-");
    Response r8 = chat(gw, a, "llama-3-8b");
    assertThat(r8.status()).isEqualTo(200);
    assertThat(answeredBy(r8)).startsWith("vllm-llama8b-");
    for (String notBought : List.of("mistral", "qwen", "llama-3-70b-instruct", "mistral-7b-instruct-v0.2")) {
      Response r = chat(gw, a, notBought);
      assertThat(r.status()).as(notBought).isEqualTo(403);
      assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("model_not_allowed");
    }
    // a customer without model rules may use every friendly name
    String b = gw.gateway.access().keys().create(new StoredKey(null, null, null, "客户B", "customer_b", KeyStatus.ACTIVE,
        null, null, null, null, null, null, null, null), null).secret();
    assertThat(answeredBy(chat(gw, b, "mistral"))).startsWith("vllm-mistral-");
    assertThat(answeredBy(chat(gw, b, "qwen"))).startsWith("vllm-qwen-");
    assertThat(backendIndexOf("mistral-7b-instruct-v0.2")).isBetween(6, 7);

    // /v1/models: customer A sees the two names it bought
    await().atMost(Duration.ofSeconds(5)).until(() -> models(b).contains("qwen-72b-chat"));
    assertThat(models(a)).containsExactlyInAnyOrder("llama-3-70b", "llama-3-8b");
    assertThat(models(b)).contains("llama-3-70b", "llama-3-8b", "mistral", "qwen", "llama-3-70b-instruct");
  }

  private Set<String> models(String key) {
    JsonArray data = gw.client.get("/v1/models", "authorization", "Bearer " + key).json().getJsonArray("data");
    return data.stream().map(o -> ((JsonObject) o).getString("id")).collect(Collectors.toSet());
  }

  @Test
  void scenario3_monthlyQuotaAndExpiry() {
    gw = scenario3();
    String a = customer("客户A - 生产环境", "customer_a", 10_000_000);
    String small = customer("客户C - 试用", "customer_c", 100);
    ApiKey ka = gw.gateway.access().keys().find(a);
    ApiKey kc = gw.gateway.access().keys().find(small);
    assertThat(ka.quota()).isEqualTo(10_000_000);
    assertThat(ka.period()).isEqualTo(QuotaPeriod.MONTHLY);

    long usedA = chat(gw, a, "llama-3-70b").json().getJsonObject("usage").getLong("total_tokens");
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.access().quotas().used(ka) == usedA);
    // the month goes on: the count does not start over each day
    clock.set("2026-01-20T10:00:00Z");
    assertThat(gw.gateway.access().quotas().used(ka)).isEqualTo(usedA);

    long usedC = 0;
    while (usedC < 100) {
      Response r = chat(gw, small, "llama-3-8b");
      assertThat(r.status()).isEqualTo(200);
      usedC += r.json().getJsonObject("usage").getLong("total_tokens");
      long expected = usedC;
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.access().quotas().used(kc) == expected);
    }
    Response refused = chat(gw, small, "llama-3-8b");
    assertThat(refused.status()).isEqualTo(429);
    assertThat(refused.json().getJsonObject("error").getString("code")).isEqualTo("insufficient_quota");
    // to February 1st, 00:00 UTC: 11 days and 14 hours
    assertThat(refused.header("retry-after")).isEqualTo(Long.toString(11 * 86_400 + 14 * 3_600));
    clock.set("2026-02-01T00:00:00Z");
    assertThat(chat(gw, small, "llama-3-8b").status()).isEqualTo(200);

    // "expires_at": "2026-12-31T23:59:59Z"
    clock.set("2026-12-31T23:59:58Z");
    assertThat(chat(gw, a, "llama-3-70b").status()).isEqualTo(200);
    clock.set("2026-12-31T23:59:59Z");
    Response expired = chat(gw, a, "llama-3-70b");
    assertThat(expired.status()).isEqualTo(403);
    assertThat(expired.json().getJsonObject("error").getString("code")).isEqualTo("key_expired");
  }

  @Test
  void scenario3_perCustomerRateLimitsAgainstAbuse() {
    gw = scenario3();
    String a = customer("客户A - 生产环境", "customer_a", 10_000_000);
    String b = customer("客户B - 生产环境", "customer_b", 10_000_000);
    Response first = chat(gw, a, "llama-3-70b");
    assertThat(first.header("x-ratelimit-limit-requests")).isEqualTo("500");
    assertThat(first.header("x-ratelimit-limit-tokens")).isEqualTo("100000");
    for (int i = 1; i < 10; i++) {
      assertThat(chat(gw, a, "llama-3-70b").status()).isEqualTo(200);
    }
    Response refused = chat(gw, a, "llama-3-70b");
    assertThat(refused.status()).isEqualTo(429);
    assertThat(refused.json().getJsonObject("error").getString("code")).isEqualTo("rate_limit_exceeded");
    assertThat(refused.header("retry-after")).isEqualTo("1");
    assertThat(chat(gw, b, "llama-3-70b").status()).isEqualTo(200);
    meter.advance(Duration.ofMillis(100));
    assertThat(chat(gw, a, "llama-3-70b").status()).isEqualTo(200);
    assertThat(Scrape.of(gw).value("llmproxy_rate_limited_total", "scope", "key", "kind", "requests")).isEqualTo(1);
    // billing: each customer's usage on its own
    ApiKey ka = gw.gateway.access().keys().find(a);
    await().atMost(Duration.ofSeconds(5)).until(() ->
        gw.gateway.store().usage(ka.id(), null, null).stream().mapToLong(UsageTotal::requests).sum() == 11);
    assertThat(gw.client.send(HttpMethod.GET, "/metrics", null).text()).contains("llmproxy_rate_limited_total");
  }
}
