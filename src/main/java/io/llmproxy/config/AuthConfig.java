package io.llmproxy.config;

import java.util.List;

/**
 * {@code auth}.
 *
 * @param enabled         default false
 * @param storage         default file
 * @param redis           never null (defaults {@code localhost:6379}, no password, db 0)
 * @param defaults        applied to keys that do not set their own quota fields
 * @param trustedProxies  CIDRs (validated) whose {@code X-Forwarded-For} is believed
 */
public record AuthConfig(boolean enabled, Storage storage, RedisConfig redis, KeyDefaults defaults, List<String> trustedProxies) {

  /** {@code auth.storage}. */
  public enum Storage { FILE, REDIS }

  /** {@code auth.redis}. */
  public record RedisConfig(String addr, String password, int db) {}

  /** {@code auth.defaults}. Defaults: daily, 0 (unlimited). */
  public record KeyDefaults(QuotaPeriod quotaResetPeriod, long totalQuota) {}
}
