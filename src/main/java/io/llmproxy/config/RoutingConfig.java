package io.llmproxy.config;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleToLongFunction;

/**
 * {@code routing}.
 *
 * @param modelMapping     client model name to backend model name, never null
 * @param retry            retries before the first byte (SPEC §6.3)
 * @param fallback         fallback chains, in file order, never null
 * @param hedge            racing and hedging (SPEC §6.4)
 * @param sessionAffinity  null when not configured
 * @param timeouts         upstream timeouts
 */
public record RoutingConfig(
    Map<String, String> modelMapping,
    RetryConfig retry,
    List<FallbackRule> fallback,
    HedgeConfig hedge,
    SessionAffinityConfig sessionAffinity,
    TimeoutsConfig timeouts) {

  /** Defaults: enabled, 2 retries, 500ms initial wait, 10s max wait. */
  public record RetryConfig(boolean enabled, int maxRetries, Duration initialWait, Duration maxWait) {}

  /**
   * One fallback chain. {@code primary} and {@code fallback} are backend names: the loader resolves a
   * URL written in the file to the name of the backend with that URL.
   *
   * @param models globs over the client's model name; empty = every model
   */
  public record FallbackRule(String primary, List<String> fallback, List<String> models) {}

  /** {@code routing.session_affinity}. */
  public record SessionAffinityConfig(String header) {}

  /** Defaults: connect 2s, first_token 120s, idle 60s, total 15m. */
  public record TimeoutsConfig(Duration connect, Duration firstToken, Duration idle, Duration total) {}

  /**
   * {@code routing.hedge}. Defaults as in SPEC §3.
   *
   * @param budgetPercent extra attempts as a percentage of requests over 10 s
   */
  public record HedgeConfig(
      boolean enabled,
      boolean coldStartRace,
      int minSamples,
      HedgeThreshold threshold,
      Duration minThreshold,
      Duration maxThreshold,
      int maxParallel,
      double budgetPercent,
      FirstTokenMode firstToken) {

    /**
     * The hedge threshold: the fixed threshold when one is set, else the chosen percentile of recent
     * TTFT, which {@code percentileNanos} gives for a percentile (-1 when nothing is known: then the
     * maximum); clamped to {@code [min_threshold, max_threshold]}. {@code percentileNanos} is called
     * only when there is no fixed threshold.
     */
    public long thresholdNanos(DoubleToLongFunction percentileNanos) {
      long min = minThreshold.toNanos();
      long max = maxThreshold.toNanos();
      long t;
      if (threshold.fixed() != null) {
        t = threshold.fixed().toNanos();
      } else {
        long p = percentileNanos.applyAsLong(threshold.percentile());
        t = p < 0 ? max : p;
      }
      return Math.max(min, Math.min(max, t));
    }
  }

  /**
   * Either a percentile of recent TTFT ({@code p95} gives {@code percentile = 95.0}) or a fixed
   * duration; exactly one is non-null.
   */
  public record HedgeThreshold(Double percentile, Duration fixed) {}

  /** {@code routing.hedge.first_token}. */
  public enum FirstTokenMode { CONTENT, FIRST_BYTE }
}
