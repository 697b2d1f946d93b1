package io.llmproxy.store;

import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.config.QuotaPeriod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * An API key as it is kept at rest: its SHA-256 hash, never the secret.
 *
 * @param id                stable identifier used by the admin API and in usage events
 * @param hash              lower-case hex SHA-256 of the key
 * @param hint              the key's first and last characters, to recognise it in a list
 * @param name              display name, may be null
 * @param userId            may be null
 * @param status            active or disabled
 * @param totalQuota        tokens per period; null = {@code auth.defaults.total_quota}; 0 = unlimited
 * @param quotaResetPeriod  null = {@code auth.defaults.quota_reset_period}
 * @param allowedIps        CIDRs or single addresses; empty = any
 * @param allowedModels     globs over the names clients send; empty = any
 * @param expiresAt         null = never
 * @param rateLimit         overrides of {@code rate_limit.per_key}; null = none
 * @param source            where it was defined
 * @param createdAt         when it was first stored
 */
public record StoredKey(
    String id,
    String hash,
    String hint,
    String name,
    String userId,
    KeyStatus status,
    Long totalQuota,
    QuotaPeriod quotaResetPeriod,
    List<String> allowedIps,
    List<String> allowedModels,
    Instant expiresAt,
    KeyLimits rateLimit,
    Source source,
    Instant createdAt) {

  /** Where a key was defined: the config file is authoritative for its own keys. */
  public enum Source { CONFIG, ADMIN }

  public StoredKey {
    allowedIps = allowedIps == null ? List.of() : List.copyOf(allowedIps);
    allowedModels = allowedModels == null ? List.of() : List.copyOf(allowedModels);
  }

  /** A config file's key as a draft: its rules, with no identity yet (see {@link #withIdentity}). */
  public static StoredKey draft(io.llmproxy.config.ApiKeyConfig c) {
    return new StoredKey(null, null, null, c.name(), c.userId(), c.status(), c.totalQuota(), c.quotaResetPeriod(),
        c.allowedIps(), c.allowedModels(), c.expiresAt(), c.rateLimit(), null, null);
  }

  /** These rules under the given identity (a new key's, or the one a changed key keeps). */
  public StoredKey withIdentity(String id, String hash, String hint, Source source, Instant createdAt) {
    return new StoredKey(id, hash, hint, name, userId, status, totalQuota, quotaResetPeriod, allowedIps, allowedModels,
        expiresAt, rateLimit, source, createdAt);
  }

  /**
   * The key as JSON, the store's format (the hash, never the secret); the admin API shows the same
   * without the hash. Every field is present, null when unset.
   */
  public JsonObject toJson() {
    KeyLimits l = rateLimit;
    return new JsonObject()
        .put("id", id).put("hash", hash).put("hint", hint)
        .put("name", name).put("user_id", userId)
        .put("status", lower(status))
        .put("total_quota", totalQuota)
        .put("quota_reset_period", quotaResetPeriod == null ? null : lower(quotaResetPeriod))
        .put("allowed_ips", new JsonArray(new ArrayList<>(allowedIps)))
        .put("allowed_models", new JsonArray(new ArrayList<>(allowedModels)))
        .put("expires_at", expiresAt == null ? null : expiresAt.toString())
        .put("rate_limit", l == null ? null : new JsonObject()
            .put("requests_per_second", l.requestsPerSecond())
            .put("requests_per_minute", l.requestsPerMinute())
            .put("tokens_per_minute", l.tokensPerMinute())
            .put("max_concurrent", l.maxConcurrent()))
        .put("source", lower(source))
        .put("created_at", createdAt.toString());
  }

  /** Reads {@link #toJson}'s form. */
  public static StoredKey fromJson(JsonObject o) {
    JsonObject l = o.getJsonObject("rate_limit");
    KeyLimits limits = l == null ? null : new KeyLimits(l.getDouble("requests_per_second"),
        l.getLong("requests_per_minute"), l.getLong("tokens_per_minute"), l.getInteger("max_concurrent"));
    String period = o.getString("quota_reset_period");
    String expires = o.getString("expires_at");
    return new StoredKey(o.getString("id"), o.getString("hash"), o.getString("hint"), o.getString("name"),
        o.getString("user_id"), KeyStatus.valueOf(upper(o.getString("status"))),
        o.getLong("total_quota"), period == null ? null : QuotaPeriod.valueOf(upper(period)),
        strings(o.getJsonArray("allowed_ips")), strings(o.getJsonArray("allowed_models")),
        expires == null ? null : Instant.parse(expires), limits,
        Source.valueOf(upper(o.getString("source"))), Instant.parse(o.getString("created_at")));
  }

  private static String lower(Enum<?> e) {
    return e.name().toLowerCase(Locale.ROOT);
  }

  private static String upper(String s) {
    return s.toUpperCase(Locale.ROOT);
  }

  private static List<String> strings(JsonArray a) {
    List<String> out = new ArrayList<>();
    if (a != null) {
      for (Object x : a) {
        out.add((String) x);
      }
    }
    return out;
  }
}
