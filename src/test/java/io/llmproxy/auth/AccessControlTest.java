package io.llmproxy.auth;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.api.OpenAiError;
import io.llmproxy.config.ApiKeyConfig;
import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.AuthConfig;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.config.QuotaPeriod;
import io.llmproxy.config.RateLimitConfig;
import io.llmproxy.limits.Quotas;
import io.llmproxy.limits.RateLimits;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.store.EmbeddedStore;
import io.llmproxy.testing.ManualTimeMeter;
import java.net.InetAddress;
import java.time.Clock;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The order of the checks: a refused request takes nothing it does not keep. */
class AccessControlTest {
  private static ApiKeyConfig key(String secret, Long quota, KeyLimits limits) {
    return new ApiKeyConfig(secret, secret, null, KeyStatus.ACTIVE, quota, QuotaPeriod.DAILY, List.of(), List.of(), null,
        limits);
  }

  @Test
  void aRequestRefusedByItsKeyOrItsQuotaTakesNoGlobalToken() {
    try (EmbeddedStore store = EmbeddedStore.inMemory(); GatewayMetrics metrics = new GatewayMetrics()) {
      AuthConfig auth = new AuthConfig(true, AuthConfig.Storage.FILE, new AuthConfig.RedisConfig("localhost:6379", "", 0),
          new AuthConfig.KeyDefaults(QuotaPeriod.DAILY, 0), List.of());
      KeyLimits none = new KeyLimits(null, null, null, null);
      KeyRegistry keys = new KeyRegistry(store, auth, none, List.of(
          key("sk-test-slow-key-000001", null, new KeyLimits(1.0, null, null, null)),
          key("sk-test-spent-key-00001", 10L, null),
          key("sk-test-other-key-00001", null, null)), Clock.systemUTC());
      RateLimitConfig rl = new RateLimitConfig(true, RateLimitConfig.Storage.MEMORY,
          new RateLimitConfig.GlobalLimit(1, 2), none);
      Quotas quotas = new Quotas(store, Clock.systemUTC());
      AccessControl access = new AccessControl(keys, new RateLimits(rl, new ManualTimeMeter()), quotas,
          new ClientAddress(List.of()), Clock.systemUTC(), metrics);
      quotas.add(keys.find("sk-test-spent-key-00001"), 10);

      // global burst 2: the slow key's first request takes one
      assertThat(access.admit("Bearer sk-test-slow-key-000001", () -> null).admitted()).isTrue();
      // refused by its own 1/s: the global token goes back
      assertThat(access.admit("Bearer sk-test-slow-key-000001", () -> null).error())
          .isEqualTo(OpenAiError.RATE_LIMIT_EXCEEDED);
      // refused by its quota: takes none
      assertThat(access.admit("Bearer sk-test-spent-key-00001", () -> null).error())
          .isEqualTo(OpenAiError.INSUFFICIENT_QUOTA);
      // so one global token is left for another key, and then none
      assertThat(access.admit("Bearer sk-test-other-key-00001", () -> null).admitted()).isTrue();
      assertThat(access.admit("Bearer sk-test-other-key-00001", () -> null).error())
          .isEqualTo(OpenAiError.RATE_LIMIT_EXCEEDED);
    }
  }

  @Test
  void addressRulesMatchWhatTheyWrite() throws Exception {
    assertThat(matches("64:ff9b::/96", "64:ff9b::c000:201")).isTrue();
    assertThat(matches("64:ff9b::/96", "64:ff9c::c000:201")).isFalse();
    assertThat(matches("64:ff9b::192.0.2.1", "64:ff9b::c000:201")).isTrue();
    assertThat(matches("::ffff:0:0/96", "10.1.2.3")).isTrue();
    assertThat(matches("::ffff:10.0.0.0/104", "10.1.2.3")).isTrue();
    assertThat(matches("::ffff:10.0.0.0/104", "11.1.2.3")).isFalse();
    assertThat(matches("10.0.1.0/24", "10.0.1.77")).isTrue();
    assertThat(matches("10.0.1.0/24", "10.0.2.1")).isFalse();
    assertThat(matches("fd00::/8", "fd12::1")).isTrue();
  }

  private static boolean matches(String rule, String address) throws Exception {
    return ApiKey.matchesAny(List.of(ApiKey.rule(rule)), InetAddress.getByName(address));
  }
}
