package io.llmproxy.sim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class SimDurationTest {

  @Test
  void parsesMillisecondsSecondsMinutesAndBareNumbers() {
    assertThat(SimDuration.parse("200ms")).isEqualTo(Duration.ofMillis(200));
    assertThat(SimDuration.parse("2s")).isEqualTo(Duration.ofSeconds(2));
    assertThat(SimDuration.parse("1m")).isEqualTo(Duration.ofMinutes(1));
    assertThat(SimDuration.parse("150")).isEqualTo(Duration.ofMillis(150));
    assertThat(SimDuration.parse(" 0 ")).isEqualTo(Duration.ZERO);
  }

  @Test
  void rejectsAnythingElse() {
    assertThatThrownBy(() -> SimDuration.parse("1.5s"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("1.5s");
    assertThatThrownBy(() -> SimDuration.parse("-1ms"))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> SimDuration.parse("2h"))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
