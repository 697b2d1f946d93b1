package io.llmproxy.admin;

import io.llmproxy.auth.ApiKey;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.limits.Quotas;
import io.llmproxy.limits.RateLimits;
import io.llmproxy.store.StoredKey;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.Locale;

/**
 * A key as the admin API shows it: its fields as stored (a null quota field means the
 * {@code auth.defaults} value), where it was defined, and its use now. Never the secret or its hash.
 */
final class KeyView {
  private KeyView() {}

  /**
   * @param quotas  for {@code quota_used}; null gives null
   * @param limits  for {@code inflight}, counted only with rate limits on; null gives null
   */
  static JsonObject of(ApiKey key, Quotas quotas, RateLimits limits) {
    StoredKey k = key.stored();
    return new JsonObject()
        .put("object", "api_key")
        .put("id", k.id())
        .put("hint", k.hint())
        .put("name", k.name())
        .put("user_id", k.userId())
        .put("status", lower(k.status()))
        .put("total_quota", k.totalQuota())
        .put("quota_reset_period", k.quotaResetPeriod() == null ? null : lower(k.quotaResetPeriod()))
        .put("allowed_ips", new JsonArray(new ArrayList<>(k.allowedIps())))
        .put("allowed_models", new JsonArray(new ArrayList<>(k.allowedModels())))
        .put("expires_at", k.expiresAt() == null ? null : k.expiresAt().toString())
        .put("rate_limit", rateLimit(k.rateLimit()))
        .put("source", lower(k.source()))
        .put("created_at", k.createdAt().toString())
        .put("quota_used", quotas == null ? null : quotas.used(key))
        .put("inflight", limits == null ? null : limits.inflight(key));
  }

  private static JsonObject rateLimit(KeyLimits l) {
    if (l == null) {
      return null;
    }
    return new JsonObject()
        .put("requests_per_second", l.requestsPerSecond())
        .put("requests_per_minute", l.requestsPerMinute())
        .put("tokens_per_minute", l.tokensPerMinute())
        .put("max_concurrent", l.maxConcurrent());
  }

  static String lower(Enum<?> e) {
    return e.name().toLowerCase(Locale.ROOT);
  }
}
