package io.llmproxy.routing;

import java.util.function.LongSupplier;

/**
 * The hedging budget (SPEC §6.4), after Finagle's and Linkerd's retry budgets: attempts beyond the
 * first (hedges and race entries) may be at most {@code percent}% of the requests of the last 10
 * seconds, plus a floor of {@link #FLOOR_PER_SECOND} a second so that a quiet gateway can still
 * hedge. One per gateway, shared by all event loops; one-second buckets.
 */
public final class HedgeBudget {
  static final int SECONDS = 10;
  static final double FLOOR_PER_SECOND = 1.0;

  private double fraction;
  private final LongSupplier nanoClock;
  private final long[] second = new long[SECONDS];
  private final long[] requests = new long[SECONDS];
  private final long[] extras = new long[SECONDS];

  public HedgeBudget(double percent, LongSupplier nanoClock) {
    this.fraction = percent / 100.0;
    this.nanoClock = nanoClock;
    java.util.Arrays.fill(second, Long.MIN_VALUE);
  }

  /** A config reload changed {@code routing.hedge.budget_percent}; what was counted stays. */
  public synchronized void percent(double percent) {
    this.fraction = percent / 100.0;
  }

  /** A request that may hedge arrived. */
  public synchronized void request() {
    requests[bucket()]++;
  }

  /** Takes one extra attempt from the budget; false (and nothing taken) when it is spent. */
  public synchronized boolean tryExtra() {
    int b = bucket();
    long s = second[b];
    long r = 0;
    long e = 0;
    for (int i = 0; i < SECONDS; i++) {
      if (second[i] != Long.MIN_VALUE && s - second[i] < SECONDS) {
        r += requests[i];
        e += extras[i];
      }
    }
    if (e + 1 > fraction * r + FLOOR_PER_SECOND * SECONDS) {
      return false;
    }
    extras[b]++;
    return true;
  }

  private int bucket() {
    long s = Math.floorDiv(nanoClock.getAsLong(), 1_000_000_000L);
    int i = (int) Math.floorMod(s, (long) SECONDS);
    if (second[i] != s) {
      second[i] = s;
      requests[i] = 0;
      extras[i] = 0;
    }
    return i;
  }
}
