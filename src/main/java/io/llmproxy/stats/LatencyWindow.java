package io.llmproxy.stats;

import org.HdrHistogram.Histogram;

/**
 * Recent latencies of one backend for one model, as a ring of HdrHistograms: {@code slots} slots
 * of {@code slotNanos} each (3 × 10 s by default), values from 1 µs to 15 minutes at 2 significant
 * digits. A percentile covers the slots still inside the window; the oldest falls out as time
 * moves on, so an idle backend forgets. Percentiles are cached for {@link #CACHE_NANOS}, because
 * the hedge threshold is asked for on every request and a merge costs microseconds.
 *
 * <p>Thread-safe (event loops record into it); the clock is passed in.
 */
public final class LatencyWindow {
  /** 15 minutes, in microseconds: the largest latency tracked. */
  static final long MAX_MICROS = 15L * 60 * 1_000_000;
  static final long CACHE_NANOS = 100_000_000L;

  private final long slotNanos;
  private final Histogram[] slots;
  private final long[] slotEpoch;
  private final Histogram merged = new Histogram(MAX_MICROS, 2);
  private long cachedAt = Long.MIN_VALUE;
  private double cachedPercentile = Double.NaN;
  private long cachedValueNanos;

  public LatencyWindow(int slots, long slotNanos) {
    if (slots < 1 || slotNanos < 1) {
      throw new IllegalArgumentException("slots and slot length must be positive");
    }
    this.slotNanos = slotNanos;
    this.slots = new Histogram[slots];
    this.slotEpoch = new long[slots];
    for (int i = 0; i < slots; i++) {
      this.slots[i] = new Histogram(MAX_MICROS, 2);
      this.slotEpoch[i] = Long.MIN_VALUE;
    }
  }

  /** Records one latency (TTFT, or total latency) observed at {@code nowNanos}. */
  public synchronized void record(long latencyNanos, long nowNanos) {
    long epoch = Math.floorDiv(nowNanos, slotNanos);
    int i = (int) Math.floorMod(epoch, (long) slots.length);
    if (slotEpoch[i] != epoch) {
      slots[i].reset();
      slotEpoch[i] = epoch;
    }
    slots[i].recordValue(Math.max(1, Math.min(MAX_MICROS, latencyNanos / 1_000)));
  }

  /** Samples inside the window at {@code nowNanos}. */
  public synchronized long count(long nowNanos) {
    long epoch = Math.floorDiv(nowNanos, slotNanos);
    long n = 0;
    for (int i = 0; i < slots.length; i++) {
      if (live(slotEpoch[i], epoch)) {
        n += slots[i].getTotalCount();
      }
    }
    return n;
  }

  /** A percentile (0–100) of the window in nanoseconds, or -1 when it is empty. */
  public synchronized long percentileNanos(double percentile, long nowNanos) {
    if (percentile == cachedPercentile && nowNanos - cachedAt < CACHE_NANOS) {
      return cachedValueNanos;
    }
    merged.reset();
    mergeLive(merged, nowNanos);
    cachedAt = nowNanos;
    cachedPercentile = percentile;
    cachedValueNanos = merged.getTotalCount() == 0 ? -1 : merged.getValueAtPercentile(percentile) * 1_000;
    return cachedValueNanos;
  }

  /**
   * Several percentiles (0–100) of the window in nanoseconds, each -1 when it is empty. For readers
   * other than the hedge (the admin API): it merges into a histogram of its own and leaves the
   * hedge's cached percentile alone.
   */
  public synchronized long[] percentilesNanos(double[] percentiles, long nowNanos) {
    Histogram h = new Histogram(MAX_MICROS, 2);
    mergeLive(h, nowNanos);
    long[] out = new long[percentiles.length];
    for (int i = 0; i < percentiles.length; i++) {
      out[i] = h.getTotalCount() == 0 ? -1 : h.getValueAtPercentile(percentiles[i]) * 1_000;
    }
    return out;
  }

  /** Adds the slots still inside the window at {@code nowNanos} to {@code into}. */
  private void mergeLive(Histogram into, long nowNanos) {
    long epoch = Math.floorDiv(nowNanos, slotNanos);
    for (int i = 0; i < slots.length; i++) {
      if (live(slotEpoch[i], epoch)) {
        into.add(slots[i]);
      }
    }
  }

  private boolean live(long slotEpochValue, long nowEpoch) {
    return slotEpochValue != Long.MIN_VALUE && nowEpoch - slotEpochValue < slots.length;
  }
}
