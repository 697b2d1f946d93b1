package io.llmproxy.stats;

/**
 * Peak-sensitive exponentially weighted moving average of latency (Finagle's and Linkerd's peak
 * EWMA): a sample above the average replaces it at once, a lower one pulls it down with weight
 * {@code 1 - e^(-Δt/τ)} (Δt since the last sample), and between samples it decays toward zero, so
 * a backend that was slow once is tried again in time. The load-balancing cost multiplies it by
 * the requests in flight. Thread-safe; the clock is passed in.
 */
public final class PeakEwma {
  private final double tauNanos;
  private double cost;
  private long stamp;
  private boolean seen;

  public PeakEwma(long tauNanos) {
    this.tauNanos = tauNanos;
  }

  public synchronized void observe(long latencyNanos, long nowNanos) {
    if (!seen || latencyNanos > cost) {
      cost = latencyNanos;
    } else {
      double w = Math.exp(-Math.max(0, nowNanos - stamp) / tauNanos);
      cost = cost * w + latencyNanos * (1 - w);
    }
    seen = true;
    stamp = Math.max(stamp, nowNanos);
  }

  /** The average now, decayed since the last sample, in nanoseconds; 0 before the first sample. */
  public synchronized double get(long nowNanos) {
    return seen ? cost * Math.exp(-Math.max(0, nowNanos - stamp) / tauNanos) : 0;
  }

  public synchronized boolean seen() {
    return seen;
  }
}
