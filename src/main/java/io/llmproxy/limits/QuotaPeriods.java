package io.llmproxy.limits;

import io.llmproxy.config.QuotaPeriod;
import java.time.DayOfWeek;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.temporal.TemporalAdjusters;

/** Quota periods at UTC boundaries: a day from 00:00, a week from Monday, a month from the 1st. */
final class QuotaPeriods {
  private QuotaPeriods() {}

  /** The start of the period holding {@code now}, epoch seconds; 0 for {@code never}. */
  static long start(QuotaPeriod p, Instant now) {
    LocalDate d = LocalDate.ofInstant(now, ZoneOffset.UTC);
    LocalDate s = switch (p) {
      case DAILY -> d;
      case WEEKLY -> d.with(TemporalAdjusters.previousOrSame(DayOfWeek.MONDAY));
      case MONTHLY -> d.withDayOfMonth(1);
      case NEVER -> null;
    };
    return s == null ? 0 : s.atStartOfDay(ZoneOffset.UTC).toEpochSecond();
  }

  /** The start of the next period, epoch seconds; {@link Long#MAX_VALUE} for {@code never}. */
  static long next(QuotaPeriod p, long start) {
    LocalDate s = LocalDate.ofEpochDay(Math.floorDiv(start, 86_400));
    LocalDate n = switch (p) {
      case DAILY -> s.plusDays(1);
      case WEEKLY -> s.plusWeeks(1);
      case MONTHLY -> s.plusMonths(1);
      case NEVER -> null;
    };
    return n == null ? Long.MAX_VALUE : n.atStartOfDay(ZoneOffset.UTC).toEpochSecond();
  }
}
