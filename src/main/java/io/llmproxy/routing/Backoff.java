package io.llmproxy.routing;

import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/** Retry waits (SPEC §6.3). */
public final class Backoff {
  private Backoff() {}

  /**
   * Exponential backoff with full jitter: uniform in [0, min(maxWait, initialWait × 2^retry)].
   *
   * @param retry 0 for the first retry
   */
  public static long fullJitterNanos(Duration initialWait, Duration maxWait, int retry) {
    long cap = maxWait.toNanos();
    long base = initialWait.toNanos();
    long ceiling = retry >= 62 || base > (cap >> Math.min(retry, 62)) ? cap : Math.min(cap, base << retry);
    return ceiling <= 0 ? 0 : ThreadLocalRandom.current().nextLong(ceiling + 1);
  }

  /**
   * A {@code Retry-After} value (delay-seconds or an HTTP-date) in nanoseconds; -1 when absent or
   * unreadable.
   */
  public static long parseRetryAfterNanos(String value) {
    if (value == null || value.isBlank()) {
      return -1;
    }
    String v = value.trim();
    try {
      double seconds = Double.parseDouble(v);
      return seconds < 0 ? -1 : (long) (seconds * 1e9);
    } catch (NumberFormatException e) {
      try {
        ZonedDateTime at = ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME);
        long ms = at.toInstant().toEpochMilli() - System.currentTimeMillis();
        return Math.max(0, TimeUnit.MILLISECONDS.toNanos(ms));
      } catch (DateTimeParseException e2) {
        return -1;
      }
    }
  }
}
