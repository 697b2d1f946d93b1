package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.auth.ApiKey;
import io.llmproxy.auth.KeyRegistry;
import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.store.StoredKey;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.ManualTimeMeter;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 7, acceptance 4: rate limits on an injected Bucket4j time, so that buckets refill exactly
 * when the test moves the meter. The gateway's requests a second with a burst, a key's requests a
 * minute and a second, its tokens a minute counted from a stream's usage, its requests in flight
 * (freed at once when a client leaves mid-stream); OpenAI's {@code x-ratelimit-*} headers; 429s with
 * {@code retry-after}; {@code llmproxy_rate_limited_total{scope,kind}}.
 */
class RateLimitTest {
  private static final String KEY = "sk-llmproxy-limits-001";
  private static final SimulatorOptions FAST = SimulatorOptions.defaults()
      .withTtft(Duration.ofMillis(1)).withItl(Duration.ZERO).withTokens(5);

  @TempDir
  Path dataDir;

  private final ManualTimeMeter meter = new ManualTimeMeter();
  private TestGateway gw;

  @AfterEach
  void stop() {
    if (gw != null) {
      gw.close();
    }
  }

  /** A gateway with one key whose {@code rate_limit} is {@code keyLimits}, and {@code rate_limit} as given. */
  private TestGateway start(String rateLimit, String keyLimits, SimulatorOptions sim) {
    return TestGateway.start("""
        backends:
          - url: "${SIM0}"
        rate_limit:
        %s
        auth: {enabled: true}
        api_keys:
          - {key: "%s", name: limited, rate_limit: %s}
          - {key: "sk-llmproxy-other-002", name: other}
        data_dir: "${DATA}"
        health_check: {enabled: false}
        """.formatted(rateLimit.indent(2).stripTrailing(), KEY, keyLimits),
        Map.of("DATA", dataDir.toString()), Clock.systemUTC(), meter, sim);
  }

  private Response chat(String key) {
    return gw.client.post("/v1/chat/completions", TestClient.chat("m", false), "authorization", "Bearer " + key);
  }

  private static void assertLimited(Response r, String code, String retryAfter) {
    assertThat(r.status()).as(r.text()).isEqualTo(429);
    JsonObject error = r.json().getJsonObject("error");
    assertThat(error.getString("code")).isEqualTo(code);
    assertThat(error.getString("type")).isEqualTo("rate_limit_error");
    assertThat(r.header("retry-after")).isEqualTo(retryAfter);
  }

  private double limited(String scope, String kind) {
    return Scrape.of(gw).value("llmproxy_rate_limited_total", "scope", scope, "kind", kind);
  }

  private ApiKey key() {
    return gw.gateway.access().keys().find(KEY);
  }

  /** The key's {@code x-ratelimit-remaining-tokens} now, without sending a request. */
  private String remainingTokens() {
    MultiMap headers = MultiMap.caseInsensitiveMultiMap();
    gw.gateway.access().rateLimitHeaders(key(), headers);
    return headers.get("x-ratelimit-remaining-tokens");
  }

  @Test
  void globalRequestsPerSecondWithABurst() {
    gw = TestGateway.start("""
        backends:
          - url: "${SIM0}"
        rate_limit:
          enabled: true
          global: {requests_per_second: 5, burst_size: 10}
        health_check: {enabled: false}
        """, Map.of(), Clock.systemUTC(), meter, FAST);
    Response ok = null;
    for (int i = 0; i < 10; i++) {
      ok = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      assertThat(ok.status()).as("request %d of the burst", i + 1).isEqualTo(200);
    }
    // no key: no per-key headers
    assertThat(ok.header("x-ratelimit-limit-requests")).isNull();
    Response refused = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
    assertLimited(refused, "rate_limit_exceeded", "1"); // 200 ms to the next token, in whole seconds
    assertThat(limited("global", "requests")).isEqualTo(1);
    assertThat(gw.posts(0)).hasSize(10);

    meter.advance(Duration.ofMillis(199));
    assertLimited(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)), "rate_limit_exceeded", "1");
    meter.advance(Duration.ofMillis(1));
    assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(200);
    assertLimited(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)), "rate_limit_exceeded", "1");

    // a long pause refills to the burst, not beyond
    meter.advance(Duration.ofMinutes(5));
    for (int i = 0; i < 10; i++) {
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(200);
    }
    assertLimited(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)), "rate_limit_exceeded", "1");
    assertThat(limited("global", "requests")).isEqualTo(4);
  }

  @Test
  void perKeyRequestsPerMinuteWithHeaders() {
    gw = start("enabled: true", "{requests_per_minute: 3}", FAST);
    for (int i = 0; i < 3; i++) {
      Response r = chat(KEY);
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("x-ratelimit-limit-requests")).isEqualTo("3");
      assertThat(r.header("x-ratelimit-remaining-requests")).isEqualTo(Integer.toString(2 - i));
      // back to full at one request every 20 s
      assertThat(r.header("x-ratelimit-reset-requests")).isEqualTo(List.of("20s", "40s", "1m0s").get(i));
      assertThat(r.header("x-ratelimit-limit-tokens")).isNull();
    }
    Response refused = chat(KEY);
    assertLimited(refused, "rate_limit_exceeded", "20");
    assertThat(refused.header("x-ratelimit-remaining-requests")).isEqualTo("0");
    assertThat(refused.header("x-ratelimit-limit-requests")).isEqualTo("3");
    assertThat(limited("key", "requests")).isEqualTo(1);
    // another key has limits of its own (rate_limit.per_key: none)
    assertThat(chat("sk-llmproxy-other-002").status()).isEqualTo(200);

    meter.advance(Duration.ofSeconds(19));
    assertLimited(chat(KEY), "rate_limit_exceeded", "1");
    meter.advance(Duration.ofSeconds(1));
    assertThat(chat(KEY).status()).isEqualTo(200);
    assertLimited(chat(KEY), "rate_limit_exceeded", "20");
    assertThat(limited("key", "requests")).isEqualTo(3);
  }

  @Test
  void perKeyRequestsPerSecond() {
    gw = start("""
        enabled: true
        per_key: {requests_per_second: 2}""", "{}", FAST);
    assertThat(chat(KEY).status()).isEqualTo(200);
    Response second = chat(KEY);
    assertThat(second.status()).isEqualTo(200);
    assertThat(second.header("x-ratelimit-limit-requests")).isEqualTo("2");
    assertThat(second.header("x-ratelimit-remaining-requests")).isEqualTo("0");
    assertThat(second.header("x-ratelimit-reset-requests")).isEqualTo("1s");
    assertLimited(chat(KEY), "rate_limit_exceeded", "1");
    meter.advance(Duration.ofMillis(500));
    assertThat(chat(KEY).status()).isEqualTo(200);
    assertLimited(chat(KEY), "rate_limit_exceeded", "1");
    // per_key applies to every key that does not override it
    assertThat(chat("sk-llmproxy-other-002").status()).isEqualTo(200);
    assertThat(chat("sk-llmproxy-other-002").status()).isEqualTo(200);
    assertLimited(chat("sk-llmproxy-other-002"), "rate_limit_exceeded", "1");
    assertThat(limited("key", "requests")).isEqualTo(3);
  }

  @Test
  void tokensPerMinuteFromAStreamsUsage() {
    gw = start("enabled: true", "{tokens_per_minute: 60}", FAST.withTokens(50));
    Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m", true), "authorization", "Bearer " + KEY);
    assertThat(s.status()).isEqualTo(200);
    assertThat(s.headers().get("x-ratelimit-limit-tokens")).isEqualTo("60");
    assertThat(s.headers().get("x-ratelimit-remaining-tokens")).as("counted after the request").isEqualTo("60");
    assertThat(s.text()).doesNotContain("\"usage\"");
    RequestRecord seen = gw.posts(0).get(0);
    assertThat(seen.bodyText()).contains("\"include_usage\":true");
    long used = Math.max(1, seen.body().length / 4) + 50; // the simulator's usage: body length / 4, and 50 tokens
    assertThat(used).isGreaterThan(60);

    // the tokens are taken when the exchange ends, just after the client's response
    await().atMost(Duration.ofSeconds(5)).until(() -> remainingTokens().equals("0"));
    // 60 a minute is one a second: from 60 - used back to 1 takes used - 59 seconds
    long wait = used - 59;
    Response refused = chat(KEY);
    assertLimited(refused, "rate_limit_exceeded", Long.toString(wait));
    assertThat(refused.header("x-ratelimit-remaining-tokens")).isEqualTo("0");
    assertThat(limited("key", "tokens")).isEqualTo(1);

    meter.advance(Duration.ofSeconds(wait - 1));
    assertLimited(chat(KEY), "rate_limit_exceeded", "1");
    meter.advance(Duration.ofSeconds(1));
    Response ok = chat(KEY);
    assertThat(ok.status()).isEqualTo(200);
    assertThat(ok.header("x-ratelimit-remaining-tokens")).isEqualTo("1");
  }

  @Test
  void headersForRequestsAndTokensArePlausible() {
    gw = start("enabled: true", "{requests_per_minute: 60, tokens_per_minute: 1200}", FAST);
    Response first = chat(KEY);
    long tokens = first.json().getJsonObject("usage").getLong("total_tokens");
    assertThat(first.header("x-ratelimit-limit-requests")).isEqualTo("60");
    assertThat(first.header("x-ratelimit-remaining-requests")).isEqualTo("59");
    assertThat(first.header("x-ratelimit-reset-requests")).isEqualTo("1s");
    assertThat(first.header("x-ratelimit-limit-tokens")).isEqualTo("1200");
    assertThat(first.header("x-ratelimit-remaining-tokens")).isEqualTo("1200");
    assertThat(first.header("x-ratelimit-reset-tokens")).isEqualTo("0ms");
    await().atMost(Duration.ofSeconds(5)).until(() -> remainingTokens().equals(Long.toString(1200 - tokens)));
    Response second = chat(KEY);
    assertThat(second.header("x-ratelimit-remaining-requests")).isEqualTo("58");
    assertThat(second.header("x-ratelimit-reset-requests")).isEqualTo("2s");
    assertThat(second.header("x-ratelimit-remaining-tokens")).isEqualTo(Long.toString(1200 - tokens));
    // 20 tokens a second: back to full in tokens / 20 seconds, rounded up
    assertThat(second.header("x-ratelimit-reset-tokens")).isEqualTo(((tokens + 19) / 20) + "s");
    await().atMost(Duration.ofSeconds(5)).until(() -> remainingTokens().equals(Long.toString(1200 - 2 * tokens)));
    // half a request's tokens come back, and a request a second
    meter.advance(Duration.ofMillis(tokens * 25));
    Response later = chat(KEY);
    assertThat(later.header("x-ratelimit-remaining-tokens")).isEqualTo(Long.toString(1200 - 2 * tokens + tokens / 2));
    assertThat(Integer.parseInt(later.header("x-ratelimit-remaining-requests"))).isEqualTo(58 - 1 + (int) (tokens * 25 / 1000));
  }

  @Test
  void maxConcurrentIsFreedAtOnceWhenTheClientLeavesMidStream() {
    SimulatorOptions slow = SimulatorOptions.defaults().withTtft(Duration.ofMillis(5)).withItl(Duration.ofMillis(50))
        .withTokens(2000);
    gw = start("enabled: true", "{max_concurrent: 2}", slow);
    List<HttpClientRequest> open = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      open.add(gw.client.open("/v1/chat/completions", TestClient.chat("m", true), "authorization", "Bearer " + KEY));
    }
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 2
        && gw.posts(0).stream().allMatch(r -> r.chunksSent() >= 3));
    assertThat(gw.gateway.access().limits().inflight(key())).isEqualTo(2);

    String quick = "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}";
    Response refused = gw.client.post("/v1/chat/completions", quick, "authorization", "Bearer " + KEY);
    assertLimited(refused, "concurrency_limit_exceeded", "1");
    assertThat(limited("key", "concurrency")).isEqualTo(1);
    assertThat(gw.posts(0)).hasSize(2);

    // the client resets its connection mid-stream: the slot is free as soon as the gateway notices
    open.remove(0).reset();
    await().atMost(Duration.ofSeconds(2)).until(() -> gw.gateway.access().limits().inflight(key()) == 1);
    Response admitted = gw.client.post("/v1/chat/completions", quick, "authorization", "Bearer " + KEY);
    assertThat(admitted.status()).as(admitted.text()).isEqualTo(200);
    await().atMost(Duration.ofSeconds(2)).until(() -> gw.gateway.access().limits().inflight(key()) == 1);

    open.forEach(r -> r.connection().close());
    await().atMost(Duration.ofSeconds(2)).until(() -> gw.gateway.access().limits().inflight(key()) == 0);
    // the meter never moved: the concurrency limit is no rate
    assertThat(gw.client.post("/v1/chat/completions", quick, "authorization", "Bearer " + KEY).status()).isEqualTo(200);
  }

  @Test
  void requestsInFlightStillCountAfterTheKeysLimitsChange() {
    SimulatorOptions slow = SimulatorOptions.defaults().withTtft(Duration.ofMillis(5)).withItl(Duration.ofMillis(50))
        .withTokens(2000);
    gw = start("enabled: true", "{}", slow);
    KeyRegistry keys = gw.gateway.access().keys();
    String secret = "sk-llmproxy-admin-made-003";
    StoredKey draft = new StoredKey(null, null, null, "admin made", "u3", KeyStatus.ACTIVE, null, null, null, null,
        null, new KeyLimits(null, null, null, 2), null, null);
    String id = keys.create(draft, secret).key().id();
    List<HttpClientRequest> open = new ArrayList<>();
    try {
      for (int i = 0; i < 2; i++) {
        open.add(gw.client.open("/v1/chat/completions", TestClient.chat("m", true), "authorization", "Bearer " + secret));
      }
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 2);
      String quick = "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}";
      assertLimited(gw.client.post("/v1/chat/completions", quick, "authorization", "Bearer " + secret),
          "concurrency_limit_exceeded", "1");

      // the limit is raised to 3 while two requests are in flight (as PATCH /admin/api-keys/{id} does)
      keys.update(id, new StoredKey(null, null, null, "admin made", "u3", KeyStatus.ACTIVE, null, null, null, null, null,
          new KeyLimits(null, null, null, 3), null, null));
      ApiKey updated = keys.get(id);
      assertThat(gw.client.post("/v1/chat/completions", quick, "authorization", "Bearer " + secret).status()).isEqualTo(200);
      await().atMost(Duration.ofSeconds(2)).until(() -> gw.gateway.access().limits().inflight(updated) == 2);
      open.add(gw.client.open("/v1/chat/completions", TestClient.chat("m", true), "authorization", "Bearer " + secret));
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 4);
      assertLimited(gw.client.post("/v1/chat/completions", quick, "authorization", "Bearer " + secret),
          "concurrency_limit_exceeded", "1");

      // the two that began under the old limits end: their slots are given back, once each
      open.remove(0).connection().close();
      open.remove(0).connection().close();
      await().atMost(Duration.ofSeconds(2)).until(() -> gw.gateway.access().limits().inflight(updated) == 1);
      open.forEach(r -> r.connection().close());
      await().atMost(Duration.ofSeconds(2)).until(() -> gw.gateway.access().limits().inflight(updated) == 0);
      for (int i = 0; i < 3; i++) {
        open.add(gw.client.open("/v1/chat/completions", TestClient.chat("m", true), "authorization", "Bearer " + secret));
      }
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.access().limits().inflight(updated) == 3);
      assertLimited(gw.client.post("/v1/chat/completions", quick, "authorization", "Bearer " + secret),
          "concurrency_limit_exceeded", "1");
    } finally {
      open.forEach(r -> r.connection().close());
    }
  }

  @Test
  void listingModelsNeedsAValidKeyButNoSlotQuotaOrRate() {
    SimulatorOptions slow = SimulatorOptions.defaults().withTtft(Duration.ofMillis(5)).withItl(Duration.ofMillis(50))
        .withTokens(2000);
    gw = start("enabled: true", "{max_concurrent: 1, requests_per_minute: 1}", slow);
    List<HttpClientRequest> open = new ArrayList<>();
    try {
      open.add(gw.client.open("/v1/chat/completions", TestClient.chat("m", true), "authorization", "Bearer " + KEY));
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.gateway.access().limits().inflight(key()) == 1);
      // the key's one slot and its one request this minute are taken: a model list still answers
      for (int i = 0; i < 3; i++) {
        Response models = gw.client.get("/v1/models", "authorization", "Bearer " + KEY);
        assertThat(models.status()).as(models.text()).isEqualTo(200);
      }
      assertThat(gw.gateway.access().limits().inflight(key())).isEqualTo(1);
      assertThat(gw.client.get("/v1/models", "authorization", "Bearer sk-llmproxy-nobody").status()).isEqualTo(401);
    } finally {
      open.forEach(r -> r.connection().close());
    }
    meter.advance(Duration.ofMinutes(1));
    await().atMost(Duration.ofSeconds(2)).until(() -> gw.gateway.access().limits().inflight(key()) == 0);
    Response r = gw.client.post("/v1/chat/completions", "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}",
        "authorization", "Bearer " + KEY);
    assertThat(r.status()).as("the model lists took nothing from the key's budget").isEqualTo(200);
  }
}
