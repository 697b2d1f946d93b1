package io.llmproxy.limits;

import io.llmproxy.api.OpenAiError;
import io.llmproxy.auth.ApiKey;
import io.llmproxy.config.QuotaPeriod;
import io.llmproxy.store.QuotaCounter;
import io.llmproxy.store.Store;
import java.time.Clock;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Token quotas per key and period (SPEC §3 {@code total_quota}, {@code quota_reset_period}). A request
 * is let in while the key's count is below its quota, and the real tokens are counted when it ends,
 * so the count may pass the quota by what the requests already in flight at that moment use: the
 * overshoot is bounded by those requests, never by later ones. Counters are kept in memory and
 * written to the {@link Store} with each commit of the usage events ({@link #stage}), and by {@link
 * #flush} at shutdown; a restart reads them back.
 */
public final class Quotas {
  private final Store store;
  private final Clock clock;
  private final Map<String, Counter> counters = new ConcurrentHashMap<>();

  private static final class Counter {
    volatile long periodStart;
    /** The period's end and kind, cached so that most requests do no calendar arithmetic. */
    volatile long periodEnd = Long.MIN_VALUE;
    volatile QuotaPeriod period;
    final AtomicLong used = new AtomicLong();
    volatile boolean dirty;

    Counter(long periodStart, long used) {
      this.periodStart = periodStart;
      this.used.set(used);
    }
  }

  public Quotas(Store store, Clock clock) {
    this.store = store;
    this.clock = clock;
    store.quotaCounters().forEach((id, c) -> counters.put(id, new Counter(c.periodStart(), c.used())));
  }

  /** The key's counter for the period holding now, started over at a boundary. */
  private Counter current(ApiKey key, Instant now) {
    QuotaPeriod p = key.period();
    long second = now.getEpochSecond();
    Counter c = counters.get(key.id());
    if (c != null && c.period == p && second >= c.periodStart && second < c.periodEnd) {
      return c;
    }
    long start = QuotaPeriods.start(p, now);
    c = counters.computeIfAbsent(key.id(), id -> new Counter(start, 0));
    synchronized (c) {
      if (c.periodStart != start) {
        c.used.set(0);
        c.periodStart = start;
        c.dirty = true;
      }
      c.period = p;
      c.periodEnd = QuotaPeriods.next(p, start);
    }
    return c;
  }

  /** Null when the key may send; else 429 {@code insufficient_quota}, with the wait to the next period. */
  public Rejection check(ApiKey key) {
    long quota = key.quota();
    if (quota <= 0) {
      return null;
    }
    Instant now = clock.instant();
    Counter c = current(key, now);
    long used = c.used.get();
    if (used < quota) {
      return null;
    }
    long next = c.periodEnd;
    long wait = next == Long.MAX_VALUE ? -1 : Math.max(0, next * 1_000_000_000L - (now.getEpochSecond() * 1_000_000_000L + now.getNano()));
    String when = key.period() == QuotaPeriod.NEVER ? "It does not reset."
        : "It resets at " + Instant.ofEpochSecond(next) + ".";
    return new Rejection(OpenAiError.INSUFFICIENT_QUOTA, "You exceeded your token quota of " + quota + " per "
        + periodName(key.period()) + " (" + used + " used). " + when, wait, null);
  }

  private static String periodName(QuotaPeriod p) {
    return switch (p) {
      case DAILY -> "day";
      case WEEKLY -> "week";
      case MONTHLY -> "month";
      case NEVER -> "key lifetime";
    };
  }

  /** Counts a finished request's tokens. */
  public void add(ApiKey key, long tokens) {
    if (tokens <= 0) {
      return;
    }
    Counter c = current(key, clock.instant());
    c.used.addAndGet(tokens);
    c.dirty = true;
  }

  /** Tokens the key used in its current period. */
  public long used(ApiKey key) {
    return current(key, clock.instant()).used.get();
  }

  /** A revoked key's counter goes, from memory and from the store. */
  public void forget(String keyId) {
    counters.remove(keyId);
    store.deleteQuotaCounter(keyId);
    store.commit();
  }

  /** Writes the counters changed since the last flush to the store, and commits. */
  public synchronized void flush() {
    if (stage()) {
      store.commit();
    }
  }

  /**
   * Writes the counters changed since the last write to the store, without committing: the usage
   * recorder does this before each of its commits, so a request's usage event and its count become
   * durable together. False when none had changed.
   */
  public synchronized boolean stage() {
    Map<String, QuotaCounter> dirty = new HashMap<>();
    counters.forEach((id, c) -> {
      if (c.dirty) {
        c.dirty = false;
        dirty.put(id, new QuotaCounter(c.periodStart, c.used.get()));
      }
    });
    if (dirty.isEmpty()) {
      return false;
    }
    store.putQuotaCounters(dirty);
    return true;
  }
}
