package io.llmproxy.routing;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class BackoffTest {
  @Test
  void fullJitterStaysUnderTheDoublingCeilingAndTheCap() {
    Duration initial = Duration.ofMillis(100);
    Duration max = Duration.ofMillis(1_000);
    for (int retry = 0; retry < 70; retry++) {
      long ceiling = Math.min(1_000_000_000L, retry < 20 ? 100_000_000L << retry : Long.MAX_VALUE);
      long maxSeen = 0;
      for (int i = 0; i < 2_000; i++) {
        long d = Backoff.fullJitterNanos(initial, max, retry);
        assertThat(d).isBetween(0L, ceiling);
        maxSeen = Math.max(maxSeen, d);
      }
      assertThat(maxSeen).as("retry %d uses its range", retry).isGreaterThan(ceiling / 2);
    }
  }

  @Test
  void retryAfter() {
    assertThat(Backoff.parseRetryAfterNanos("2")).isEqualTo(2_000_000_000L);
    assertThat(Backoff.parseRetryAfterNanos("0.5")).isEqualTo(500_000_000L);
    assertThat(Backoff.parseRetryAfterNanos(null)).isEqualTo(-1);
    assertThat(Backoff.parseRetryAfterNanos("soon")).isEqualTo(-1);
    assertThat(Backoff.parseRetryAfterNanos("Wed, 21 Oct 2015 07:28:00 GMT")).isZero();
  }
}
