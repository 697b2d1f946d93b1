package io.llmproxy.store;

import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.config.QuotaPeriod;
import java.time.Instant;
import java.util.List;

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
}
