package io.llmproxy.admin;

import io.llmproxy.auth.ApiKey;
import io.llmproxy.limits.Quotas;
import io.llmproxy.limits.RateLimits;
import io.vertx.core.json.JsonObject;

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
    JsonObject stored = key.stored().toJson();
    stored.remove("hash");
    return new JsonObject()
        .put("object", "api_key")
        .mergeIn(stored)
        .put("quota_used", quotas == null ? null : quotas.used(key))
        .put("inflight", limits == null ? null : limits.inflight(key));
  }
}
