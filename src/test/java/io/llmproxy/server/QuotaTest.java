package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.auth.ApiKey;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.store.QuotaCounter;
import io.llmproxy.testing.Load;
import io.llmproxy.testing.MutableClock;
import io.llmproxy.testing.ScriptedBackend;
import io.llmproxy.testing.ScriptedBackend.Step;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.TestClient.Event;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.llmproxy.testing.WebhookReceiver;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 7, acceptance 3: token quotas on an injected clock. A key is let in while its count is below
 * its quota and is refused with 429 {@code insufficient_quota} and a {@code retry-after} to the next
 * UTC period after; the count starts over at the daily and monthly boundaries; it is the backend's
 * real usage, also for streams (the gateway asks for it and hides the usage chunk from a client that
 * did not); concurrent requests overshoot by at most what was in flight; counts survive a restart.
 */
class QuotaTest {
  private static final String DAILY = "sk-llmproxy-quota-daily";
  private static final String MONTHLY = "sk-llmproxy-quota-monthly";
  private static final String BIG = "sk-llmproxy-quota-big";
  private static final String LIFETIME = "sk-llmproxy-quota-lifetime";

  private static final String YAML = """
      backends:
        - url: "${BACKEND}"
      auth:
        enabled: true
        defaults: {quota_reset_period: daily, total_quota: 100}
      api_keys:
        - {key: "%s", name: daily}
        - {key: "%s", name: monthly, quota_reset_period: monthly}
        - {key: "%s", name: big, total_quota: 1000}
        - {key: "%s", name: lifetime, quota_reset_period: never}
      data_dir: "${DATA}"
      health_check: {enabled: false}
      """.formatted(DAILY, MONTHLY, BIG, LIFETIME);

  private static final SimulatorOptions SIM = SimulatorOptions.defaults()
      .withTtft(Duration.ofMillis(1)).withItl(Duration.ZERO).withTokens(10);

  @TempDir
  Path dataDir;

  private final MutableClock clock = MutableClock.at("2026-01-14T10:00:00Z");
  private TestGateway gw;

  private TestGateway start(SimulatorOptions sim) {
    return TestGateway.builder(YAML.replace("${BACKEND}", "${SIM0}")).vars(Map.of("DATA", dataDir.toString()))
        .clock(clock).start(sim);
  }

  @AfterEach
  void stop() {
    if (gw != null) {
      gw.close();
    }
  }

  private static String body(int maxTokens, boolean stream, String streamOptions) {
    return "{\"model\":\"m\",\"max_tokens\":" + maxTokens + ",\"stream\":" + stream
        + (streamOptions == null ? "" : ",\"stream_options\":" + streamOptions)
        + ",\"messages\":[{\"role\":\"user\",\"content\":\"Count to ten, please.\"}]}";
  }

  private Response chat(String key, int maxTokens) {
    return gw.client.post("/v1/chat/completions", body(maxTokens, false, null), "authorization", "Bearer " + key);
  }

  private ApiKey key(String secret) {
    return gw.gateway.access().keys().find(secret);
  }

  private long used(String secret) {
    return gw.gateway.access().quotas().used(key(secret));
  }

  /** The count reaches {@code expected}: it is added when the exchange ends, just after the client's response. */
  private void awaitUsed(String secret, long expected) {
    await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(used(secret)).isEqualTo(expected));
  }

  /** One admitted request, and its count awaited. */
  private void admittedAndCounted(String secret) {
    long before = used(secret);
    Response r = chat(secret, 10);
    assertThat(r.status()).as(r.text()).isEqualTo(200);
    awaitUsed(secret, before + totalTokens(r));
  }

  private static long totalTokens(Response r) {
    return r.json().getJsonObject("usage").getLong("total_tokens");
  }

  /** Sends requests until one is refused; returns the key's count then, checked against the usage reported. */
  private long exhaust(String secret, long quota) {
    long sum = used(secret);
    for (int i = 0; i < 100; i++) {
      Response r = chat(secret, 10);
      if (r.status() == 429) {
        assertThat(sum).isGreaterThanOrEqualTo(quota);
        return sum;
      }
      assertThat(r.status()).as(r.text()).isEqualTo(200);
      sum += totalTokens(r);
      awaitUsed(secret, sum);
    }
    throw new AssertionError("never refused");
  }

  private static void assertQuotaRefusal(Response r, String retryAfter) {
    assertThat(r.status()).as(r.text()).isEqualTo(429);
    JsonObject error = r.json().getJsonObject("error");
    assertThat(error.getString("code")).isEqualTo("insufficient_quota");
    assertThat(error.getString("type")).isEqualTo("insufficient_quota");
    assertThat(r.header("retry-after")).isEqualTo(retryAfter);
  }

  @Test
  void exhaustedIs429WithRetryAfterAndResetsAtTheDailyBoundary() {
    gw = start(SIM);
    int posts = gw.posts(0).size();
    long used = exhaust(DAILY, 100);
    assertThat(used).as("counted from the backend's usage").isEqualTo(used(DAILY));
    int admitted = gw.posts(0).size() - posts;

    // 10:00 UTC: 14 hours to the next day
    assertQuotaRefusal(chat(DAILY, 10), "50400");
    assertThat(gw.posts(0)).as("a refused request never reaches the backend").hasSize(posts + admitted);
    assertThat(Scrape.of(gw).value("llmproxy_quota_exceeded_total")).isEqualTo(2);
    // another key's quota is its own
    admittedAndCounted(MONTHLY);

    clock.set("2026-01-14T23:59:59.500Z");
    assertQuotaRefusal(chat(DAILY, 10), "1");
    clock.set("2026-01-15T00:00:00Z");
    assertThat(used(DAILY)).isZero();
    admittedAndCounted(DAILY);
  }

  @Test
  void monthlyQuotaResetsOnTheFirstOfTheMonthOnly() {
    clock.set("2026-01-31T23:00:00Z");
    gw = start(SIM);
    exhaust(MONTHLY, 100);
    assertQuotaRefusal(chat(MONTHLY, 10), "3600");
    // the daily key started over at midnight, the monthly one did not: still January
    clock.set("2026-01-31T23:59:59Z");
    assertQuotaRefusal(chat(MONTHLY, 10), "1");
    clock.set("2026-02-01T00:00:00Z");
    admittedAndCounted(MONTHLY);
    // and February (28 days in 2026) lasts until March
    exhaust(MONTHLY, 100);
    clock.set("2026-02-28T23:00:00Z");
    assertQuotaRefusal(chat(MONTHLY, 10), "3600");
    clock.set("2026-03-01T00:00:00Z");
    assertThat(chat(MONTHLY, 10).status()).isEqualTo(200);
  }

  @Test
  void aQuotaThatNeverResetsHasNoRetryAfter() {
    gw = start(SIM);
    exhaust(LIFETIME, 100);
    Response r = chat(LIFETIME, 10);
    assertThat(r.status()).isEqualTo(429);
    assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("insufficient_quota");
    assertThat(r.header("retry-after")).as("waiting does not help").isNull();
    clock.set("2027-01-01T00:00:00Z");
    assertThat(chat(LIFETIME, 10).status()).isEqualTo(429);
  }

  @Test
  void aStreamIsCountedFromTheUsageTheGatewayAskedFor() {
    gw = start(SIM);
    Streamed s = gw.client.stream("/v1/chat/completions", body(7, true, null), "authorization", "Bearer " + DAILY);
    assertThat(s.status()).isEqualTo(200);
    RequestRecord seen = gw.posts(0).get(0);
    JsonObject upstream = new JsonObject(seen.bodyText());
    assertThat(upstream.getJsonObject("stream_options").getBoolean("include_usage")).isTrue();
    // the simulator counts the body it got as the prompt (length / 4)
    long expected = Math.max(1, seen.body().length / 4) + 7;
    awaitUsed(DAILY, expected);
    assertThat(s.events()).noneMatch(e -> e.data().contains("\"usage\""));
    assertThat(s.events().get(s.events().size() - 1).data()).isEqualTo("[DONE]");
    assertThat(s.content()).isNotEmpty();

    // a client that asked gets the usage chunk, and its body goes upstream unchanged
    String asked = body(7, true, "{\"include_usage\":true}");
    Streamed withUsage = gw.client.stream("/v1/chat/completions", asked, "authorization", "Bearer " + DAILY);
    assertThat(gw.posts(0).get(1).bodyText()).isEqualTo(asked);
    List<Event> usageEvents = withUsage.events().stream().filter(e -> e.data().contains("\"choices\":[]")).toList();
    assertThat(usageEvents).singleElement().satisfies(e ->
        assertThat(new JsonObject(e.data()).getJsonObject("usage").getLong("completion_tokens")).isEqualTo(7));
    awaitUsed(DAILY, expected + asked.length() / 4 + 7);
  }

  /** A backend's exact bytes: CRLF line ends, a comment, and the usage chunk cut across two writes. */
  private static final List<String> SCRIPT = List.of(
      ": keep-alive\r\n\r\n",
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\n",
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi ☃\"}}],\"usage\":null}\r\n\r\n"
          + "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\r\n\r\n"
          + "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":40,",
      "\"total_tokens\":45,\"completion_tokens\":5}}\r\n\r",
      "\ndata: [DONE]\r\n\r\n");
  private static final String USAGE_EVENT =
      "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"total_tokens\":45,\"completion_tokens\":5}}\r\n\r\n";

  @Test
  void theClientGetsEveryByteButTheUsageChunkItDidNotAskFor() {
    String all = String.join("", SCRIPT);
    List<Step> steps = SCRIPT.stream().map(s -> new Step(5, Buffer.buffer(s))).toList();
    Vertx vertx = Vertx.vertx();
    try (ScriptedBackend backend = ScriptedBackend.start(vertx, "text/event-stream", steps)) {
      gw = TestGateway.builder(YAML).vars(Map.of("DATA", dataDir.toString(), "BACKEND", backend.url()))
          .clock(clock).start();
      for (String options : new String[] {null, "{}", "{\"include_usage\":false}", "null"}) {
        String request = body(5, true, options);
        Streamed s = gw.client.stream("/v1/chat/completions", request, "authorization", "Bearer " + BIG);
        assertThat(s.status()).isEqualTo(200);
        assertThat(s.text()).as("stream_options %s", options).isEqualTo(all.replace(USAGE_EVENT, ""));
        Buffer upstream = backend.receivedBodies.get(backend.receivedBodies.size() - 1);
        assertThat(new JsonObject(upstream).getJsonObject("stream_options").getBoolean("include_usage")).isTrue();
      }
      awaitUsed(BIG, 4 * 45);
      String asked = body(5, true, "{\"include_usage\":true}");
      Streamed s = gw.client.stream("/v1/chat/completions", asked, "authorization", "Bearer " + BIG);
      assertThat(s.body().getBytes()).isEqualTo(all.getBytes(StandardCharsets.UTF_8));
      assertThat(backend.receivedBodies.get(backend.receivedBodies.size() - 1).toString()).isEqualTo(asked);
      awaitUsed(BIG, 5 * 45);
    } finally {
      if (gw != null) {
        gw.close();
        gw = null;
      }
      TestGateway.await(vertx.close());
    }
  }

  @Test
  void concurrentRequestsOvershootOnlyByWhatWasInFlight() {
    gw = start(SIM.withTtft(Duration.ofMillis(20)));
    int concurrency = 8;
    List<Response> results = Load.run(120, concurrency, 60, i -> gw.client.sendAsync(HttpMethod.POST,
        "/v1/chat/completions", Buffer.buffer(body(10, false, null)), "authorization", "Bearer " + BIG));
    List<Response> ok = results.stream().filter(r -> r.status() == 200).toList();
    long k = totalTokens(ok.get(0));
    assertThat(ok).allSatisfy(r -> assertThat(totalTokens(r)).isEqualTo(k));
    assertThat(results).allSatisfy(r -> assertThat(r.status()).isIn(200, 429));
    awaitUsed(BIG, ok.size() * k);
    long used = used(BIG);
    assertThat(used).as("used, with %d requests of %d tokens admitted", ok.size(), k)
        .isGreaterThanOrEqualTo(1000).isLessThanOrEqualTo(1000 - 1 + concurrency * k);
    // from then on every request is refused
    for (int i = 0; i < 10; i++) {
      assertQuotaRefusal(chat(BIG, 10), "50400");
    }
    assertThat(gw.posts(0)).hasSize(ok.size());
  }

  @Test
  void countsSurviveARestart() {
    gw = start(SIM);
    Response r1 = chat(DAILY, 10);
    Response r2 = chat(MONTHLY, 10);
    awaitUsed(DAILY, totalTokens(r1));
    awaitUsed(MONTHLY, totalTokens(r2));
    gw.close();
    gw = null;

    gw = start(SIM);
    assertThat(used(DAILY)).isEqualTo(totalTokens(r1));
    assertThat(used(MONTHLY)).isEqualTo(totalTokens(r2));
    assertThat(exhaust(DAILY, 100)).isEqualTo(used(DAILY));
    gw.close();
    gw = null;

    // an exhausted key is still exhausted after a restart, until its period ends
    gw = start(SIM);
    assertQuotaRefusal(chat(DAILY, 10), "50400");
    clock.set("2026-01-15T00:00:00Z");
    assertThat(chat(DAILY, 10).status()).isEqualTo(200);
  }

  @Test
  void countsOfRequestsThatEndWhileDrainingReachTheStoreBeforeTheWebhookGivesUp() {
    Vertx hookVertx = Vertx.vertx();
    try {
      WebhookReceiver hook = WebhookReceiver.start(hookVertx).failWith(503);
      String yaml = YAML.replace("${BACKEND}", "${SIM0}")
          + "usage_hook: {enabled: true, url: \"" + hook.url() + "\", timeout: 1s, retry: 2}\n";
      gw = TestGateway.builder(yaml).vars(Map.of("DATA", dataDir.toString())).clock(clock)
          .start(SIM.withTtft(Duration.ofMillis(500)));
      Future<Response> pending = gw.client.sendAsync(HttpMethod.POST, "/v1/chat/completions",
          Buffer.buffer(body(10, false, null)), "authorization", "Bearer " + DAILY);
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 1);

      // The webhook refuses every event, so after the drain the gateway waits the drain time again
      // for it: the counts must not wait for the very end.
      Future<Void> stopping = gw.gateway.shutdown(Duration.ofSeconds(4));
      Response r = TestGateway.await(pending);
      assertThat(r.status()).as(r.text()).isEqualTo(200);
      String id = key(DAILY).id();
      await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
        QuotaCounter c = gw.gateway.store().quotaCounters().get(id);
        assertThat(c).isNotNull();
        assertThat(c.used()).isEqualTo(totalTokens(r));
      });
      assertThat(stopping.isComplete()).as("still waiting for the webhook").isFalse();
      TestGateway.await(stopping);
    } finally {
      TestGateway.await(hookVertx.close());
    }
  }
}
