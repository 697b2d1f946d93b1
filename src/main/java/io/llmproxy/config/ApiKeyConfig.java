package io.llmproxy.config;

import java.time.Instant;
import java.util.List;

/**
 * One entry of {@code api_keys}.
 *
 * @param key               the secret, required, unique
 * @param name              display name, may be null
 * @param userId            may be null
 * @param status            default active
 * @param totalQuota        tokens per period; null = {@code auth.defaults.total_quota}; 0 = unlimited
 * @param quotaResetPeriod  null = {@code auth.defaults.quota_reset_period}
 * @param allowedIps        CIDRs or single addresses (validated), empty = any
 * @param allowedModels     globs over the client's model names, empty = any
 * @param expiresAt         null = never
 * @param rateLimit         overrides of {@code rate_limit.per_key}; null when absent
 */
public record ApiKeyConfig(
    String key,
    String name,
    String userId,
    KeyStatus status,
    Long totalQuota,
    QuotaPeriod quotaResetPeriod,
    List<String> allowedIps,
    List<String> allowedModels,
    Instant expiresAt,
    KeyLimits rateLimit) {

  /** {@code api_keys[].status}. */
  public enum KeyStatus { ACTIVE, DISABLED }

  /** Never print the secret. */
  @Override
  public String toString() {
    return "ApiKeyConfig[name=" + name + ", userId=" + userId + ", status=" + status + "]";
  }
}
