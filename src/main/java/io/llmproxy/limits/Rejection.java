package io.llmproxy.limits;

import io.llmproxy.api.OpenAiError;
import io.llmproxy.metrics.GatewayMetrics.RateLimit;

/**
 * A request refused by a limit: the error, its message, and how long to wait (-1 when waiting does
 * not help, as with a quota that never resets).
 *
 * @param limit the rate limit that refused it, for {@code llmproxy_rate_limited_total}; null for a
 *              quota (counted as {@code llmproxy_quota_exceeded_total})
 */
public record Rejection(OpenAiError error, String message, long retryAfterNanos, RateLimit limit) {

  /** {@code retry-after} in whole seconds, rounded up; null when there is none. */
  public String retryAfterSeconds() {
    return retryAfterNanos < 0 ? null : Long.toString(Math.max(1, (retryAfterNanos + 999_999_999L) / 1_000_000_000L));
  }
}
