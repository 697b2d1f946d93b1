package io.llmproxy.limits;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.config.QuotaPeriod;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/** Quota periods begin at UTC boundaries: midnight, Monday, the 1st (SPEC §3 quota_reset_period). */
class QuotaPeriodsTest {

  private static String start(QuotaPeriod p, String now) {
    return Instant.ofEpochSecond(QuotaPeriods.start(p, Instant.parse(now))).toString();
  }

  private static String next(QuotaPeriod p, String now) {
    return Instant.ofEpochSecond(QuotaPeriods.next(p, QuotaPeriods.start(p, Instant.parse(now)))).toString();
  }

  @Test
  void daily() {
    assertThat(start(QuotaPeriod.DAILY, "2026-01-14T10:00:00Z")).isEqualTo("2026-01-14T00:00:00Z");
    assertThat(next(QuotaPeriod.DAILY, "2026-01-14T10:00:00Z")).isEqualTo("2026-01-15T00:00:00Z");
    assertThat(start(QuotaPeriod.DAILY, "2026-01-14T00:00:00Z")).isEqualTo("2026-01-14T00:00:00Z");
    assertThat(start(QuotaPeriod.DAILY, "2026-01-13T23:59:59.999999999Z")).isEqualTo("2026-01-13T00:00:00Z");
    assertThat(next(QuotaPeriod.DAILY, "2026-12-31T23:59:59Z")).isEqualTo("2027-01-01T00:00:00Z");
    assertThat(next(QuotaPeriod.DAILY, "2024-02-28T12:00:00Z")).isEqualTo("2024-02-29T00:00:00Z");
  }

  @Test
  void weeklyFromMonday() {
    // 2026-01-12 is a Monday
    assertThat(start(QuotaPeriod.WEEKLY, "2026-01-12T00:00:00Z")).isEqualTo("2026-01-12T00:00:00Z");
    assertThat(start(QuotaPeriod.WEEKLY, "2026-01-14T10:00:00Z")).isEqualTo("2026-01-12T00:00:00Z");
    assertThat(start(QuotaPeriod.WEEKLY, "2026-01-18T23:59:59Z")).isEqualTo("2026-01-12T00:00:00Z"); // Sunday
    assertThat(start(QuotaPeriod.WEEKLY, "2026-01-11T23:59:59Z")).isEqualTo("2026-01-05T00:00:00Z");
    assertThat(next(QuotaPeriod.WEEKLY, "2026-01-14T10:00:00Z")).isEqualTo("2026-01-19T00:00:00Z");
    // across a year end: Thursday 2026-01-01 is in the week of Monday 2025-12-29
    assertThat(start(QuotaPeriod.WEEKLY, "2026-01-01T08:00:00Z")).isEqualTo("2025-12-29T00:00:00Z");
    assertThat(next(QuotaPeriod.WEEKLY, "2026-01-01T08:00:00Z")).isEqualTo("2026-01-05T00:00:00Z");
  }

  @Test
  void monthlyFromTheFirst() {
    assertThat(start(QuotaPeriod.MONTHLY, "2026-01-14T10:00:00Z")).isEqualTo("2026-01-01T00:00:00Z");
    assertThat(next(QuotaPeriod.MONTHLY, "2026-01-14T10:00:00Z")).isEqualTo("2026-02-01T00:00:00Z");
    assertThat(start(QuotaPeriod.MONTHLY, "2026-01-31T23:59:59Z")).isEqualTo("2026-01-01T00:00:00Z");
    assertThat(next(QuotaPeriod.MONTHLY, "2026-12-31T23:59:59Z")).isEqualTo("2027-01-01T00:00:00Z");
    // 31 -> 30 days: March into April, and April (30) into May
    assertThat(next(QuotaPeriod.MONTHLY, "2026-03-31T12:00:00Z")).isEqualTo("2026-04-01T00:00:00Z");
    assertThat(start(QuotaPeriod.MONTHLY, "2026-04-30T23:59:59Z")).isEqualTo("2026-04-01T00:00:00Z");
    assertThat(next(QuotaPeriod.MONTHLY, "2026-04-30T23:59:59Z")).isEqualTo("2026-05-01T00:00:00Z");
  }

  @Test
  void februaryInLeapAndCommonYears() {
    assertThat(start(QuotaPeriod.MONTHLY, "2024-02-29T23:59:59Z")).isEqualTo("2024-02-01T00:00:00Z");
    assertThat(next(QuotaPeriod.MONTHLY, "2024-02-29T23:59:59Z")).isEqualTo("2024-03-01T00:00:00Z");
    assertThat(next(QuotaPeriod.MONTHLY, "2024-01-31T00:00:00Z")).isEqualTo("2024-02-01T00:00:00Z");
    assertThat(next(QuotaPeriod.MONTHLY, "2025-02-28T23:59:59Z")).isEqualTo("2025-03-01T00:00:00Z");
    assertThat(start(QuotaPeriod.MONTHLY, "2025-03-01T00:00:00Z")).isEqualTo("2025-03-01T00:00:00Z");
    assertThat(start(QuotaPeriod.MONTHLY, "2100-02-28T00:00:00Z")).isEqualTo("2100-02-01T00:00:00Z"); // not a leap year
    assertThat(next(QuotaPeriod.MONTHLY, "2100-02-28T00:00:00Z")).isEqualTo("2100-03-01T00:00:00Z");
  }

  @Test
  void neverResets() {
    assertThat(QuotaPeriods.start(QuotaPeriod.NEVER, Instant.parse("2026-01-14T10:00:00Z"))).isZero();
    assertThat(QuotaPeriods.next(QuotaPeriod.NEVER, 0)).isEqualTo(Long.MAX_VALUE);
  }

  @Test
  void beforeTheEpochToo() {
    assertThat(start(QuotaPeriod.DAILY, "1969-12-31T12:00:00Z")).isEqualTo("1969-12-31T00:00:00Z");
    assertThat(next(QuotaPeriod.DAILY, "1969-12-31T12:00:00Z")).isEqualTo("1970-01-01T00:00:00Z");
  }
}
