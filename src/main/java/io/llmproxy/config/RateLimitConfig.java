package io.llmproxy.config;

/**
 * {@code rate_limit}. A zero rate or limit means "no limit" for that dimension.
 *
 * @param enabled default false
 * @param storage default memory
 */
public record RateLimitConfig(boolean enabled, Storage storage, GlobalLimit global, KeyLimits perKey) {

  /** {@code rate_limit.storage}. */
  public enum Storage { MEMORY, REDIS }

  /** {@code rate_limit.global}; {@code burstSize} defaults to the rate (rounded up). */
  public record GlobalLimit(double requestsPerSecond, long burstSize) {}
}
