package io.llmproxy.health;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.llmproxy.config.OutlierDetectionConfig;
import io.llmproxy.health.PassiveHealth.Admission;
import io.llmproxy.health.PassiveHealth.Failure;
import io.llmproxy.health.PassiveHealth.State;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The passive health state machine on an injected clock, no sleeps (SPEC §6.5). */
class PassiveHealthTest {
  private static final long S = 1_000_000_000L;

  /** consecutive 3, rate 0.5 over 30 s from 10 requests, cooldown 5 s doubling to 60 s, 2 canaries, slow start 30 s. */
  private static final OutlierDetectionConfig CONFIG = new OutlierDetectionConfig(true, 3, 0.5, 10, Duration.ofSeconds(30),
      Duration.ofSeconds(5), Duration.ofSeconds(60), 2, Duration.ofSeconds(30));

  private long now = 1_000 * S;
  private double jitter = 0.5; // the middle of the ±10% band: no jitter
  private final List<String> changes = new ArrayList<>();

  private PassiveHealth health(OutlierDetectionConfig config) {
    return new PassiveHealth(config, () -> now, () -> jitter,
        (from, to, why, cooldown) -> changes.add(from + ">" + to));
  }

  private void fail(PassiveHealth h, int times) {
    for (int i = 0; i < times; i++) {
      h.failure(Failure.STATUS_5XX, 0, false);
    }
  }

  private static double seconds(long nanos) {
    return nanos / (double) S;
  }

  /** Lets the cooldown run out, then closes the half-open state with successful canaries. */
  private void recover(PassiveHealth h) {
    now += h.cooldownRemainingNanos();
    for (int i = 0; i < CONFIG.halfOpenRequests(); i++) {
      assertThat(h.tryAdmit()).isEqualTo(Admission.CANARY);
      h.success(true);
    }
  }

  @Test
  void ejectedAfterConsecutiveFailuresAndASuccessResetsTheCount() {
    PassiveHealth h = health(CONFIG);
    fail(h, 2);
    h.success(false);
    fail(h, 2);
    assertThat(h.state()).isEqualTo(State.HEALTHY);
    assertThat(h.tryAdmit()).isEqualTo(Admission.NORMAL);
    fail(h, 1);
    assertThat(h.state()).isEqualTo(State.EJECTED);
    assertThat(h.tryAdmit()).isEqualTo(Admission.REFUSED);
    assertThat(h.admits()).isFalse();
    assertThat(seconds(h.cooldownRemainingNanos())).isCloseTo(5.0, within(1e-9));
    assertThat(changes).containsExactly("HEALTHY>EJECTED");
  }

  @Test
  void ejectedOnTheFailureRateOnceThereAreEnoughRequests() {
    PassiveHealth h = health(CONFIG);
    // alternate: never 3 in a row, but half of them fail
    for (int i = 0; i < 4; i++) {
      h.failure(Failure.TIMEOUT, 0, false);
      h.success(false);
    }
    assertThat(h.state()).as("8 requests: under min_requests").isEqualTo(State.HEALTHY);
    h.failure(Failure.CONNECT, 0, false);
    h.success(false);
    assertThat(h.state()).as("10 requests, 5 failed, but the last was a success").isEqualTo(State.HEALTHY);
    h.failure(Failure.RESET, 0, false);
    assertThat(h.state()).as("11 requests, 6 failed").isEqualTo(State.EJECTED);
  }

  @Test
  void theRateOnlyCountsTheWindow() {
    PassiveHealth h = health(CONFIG);
    for (int i = 0; i < 20; i++) {
      h.failure(Failure.STATUS_5XX, 0, false);
      h.success(false);
      h.success(false);
      h.success(false);
      now += S / 10;
    }
    // 25% failed: fine. Half a minute later the old requests are gone from the window.
    now += 31 * S;
    for (int i = 0; i < 5; i++) {
      h.failure(Failure.STATUS_5XX, 0, false);
      h.success(false);
    }
    assertThat(h.state()).as("10 requests in the window, 5 failed, last a success").isEqualTo(State.HEALTHY);
    h.failure(Failure.STATUS_5XX, 0, false);
    assertThat(h.state()).isEqualTo(State.EJECTED);
  }

  @Test
  void theCooldownDoublesUpToItsCap() {
    PassiveHealth h = health(CONFIG);
    List<Double> cooldowns = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      fail(h, 3);
      cooldowns.add(seconds(h.currentCooldownNanos()));
      now += h.cooldownRemainingNanos();
      assertThat(h.tryAdmit()).isEqualTo(Admission.CANARY);
      h.failure(Failure.STATUS_5XX, 0, true); // the canary fails: ejected again, for longer
      cooldowns.add(seconds(h.currentCooldownNanos()));
      recover(h);
      now += S; // back only a second: still counts as one episode
    }
    assertThat(cooldowns.subList(0, 6)).containsExactly(5.0, 10.0, 20.0, 40.0, 60.0, 60.0);
    assertThat(cooldowns).allSatisfy(c -> assertThat(c).isLessThanOrEqualTo(60.0));
  }

  @Test
  void jitterStaysWithinTenPercent() {
    PassiveHealth h = health(CONFIG);
    jitter = 0.0;
    fail(h, 3);
    assertThat(seconds(h.currentCooldownNanos())).isCloseTo(4.5, within(1e-6));
    recover(h);
    now += 31 * S;
    jitter = 0.999999;
    fail(h, 3);
    assertThat(seconds(h.currentCooldownNanos())).isCloseTo(5.5, within(1e-4));
  }

  @Test
  void theBackoffStartsOverAfterAHealthyWindow() {
    PassiveHealth h = health(CONFIG);
    fail(h, 3);
    recover(h);
    now += 10 * S;
    fail(h, 3);
    assertThat(seconds(h.currentCooldownNanos())).as("second ejection soon after: doubled").isEqualTo(10.0);
    recover(h);
    now += 31 * S; // a whole window healthy
    fail(h, 3);
    assertThat(seconds(h.currentCooldownNanos())).as("after a healthy window: the base again").isEqualTo(5.0);
  }

  @Test
  void halfOpenLetsThroughNoMoreThanItsCanaries() {
    PassiveHealth h = health(CONFIG);
    fail(h, 3);
    now += 4 * S;
    assertThat(h.tryAdmit()).as("still cooling").isEqualTo(Admission.REFUSED);
    now += S;
    assertThat(h.state()).isEqualTo(State.HALF_OPEN);
    assertThat(h.tryAdmit()).isEqualTo(Admission.CANARY);
    assertThat(h.tryAdmit()).isEqualTo(Admission.CANARY);
    assertThat(h.tryAdmit()).as("two canaries out").isEqualTo(Admission.REFUSED);
    assertThat(h.admits()).isFalse();
    h.abandoned(true); // a canary cancelled: its slot comes back
    assertThat(h.tryAdmit()).isEqualTo(Admission.CANARY);
    h.success(true);
    assertThat(h.state()).as("one success of two").isEqualTo(State.HALF_OPEN);
    h.success(true);
    assertThat(h.state()).isEqualTo(State.SLOW_START);
    assertThat(changes).containsExactly("HEALTHY>EJECTED", "EJECTED>HALF_OPEN", "HALF_OPEN>SLOW_START");
  }

  @Test
  void aFailedCanaryEjectsAgainForLonger() {
    PassiveHealth h = health(CONFIG);
    fail(h, 3);
    now += 5 * S;
    assertThat(h.tryAdmit()).isEqualTo(Admission.CANARY);
    h.failure(Failure.CONNECT, 0, true);
    assertThat(h.state()).isEqualTo(State.EJECTED);
    assertThat(seconds(h.cooldownRemainingNanos())).isEqualTo(10.0);
  }

  @Test
  void slowStartRampsTheWeightFromTenPercent() {
    PassiveHealth h = health(CONFIG);
    assertThat(h.weightFactor()).isEqualTo(1.0);
    fail(h, 3);
    recover(h);
    assertThat(h.weightFactor()).isCloseTo(0.1, within(1e-9));
    now += 15 * S;
    assertThat(h.weightFactor()).isCloseTo(0.55, within(1e-9));
    now += 15 * S;
    assertThat(h.weightFactor()).isEqualTo(1.0);
    assertThat(h.state()).isEqualTo(State.HEALTHY);
    assertThat(changes).endsWith("SLOW_START>HEALTHY");
  }

  @Test
  void aRetryAfterSetsTheMinimumCooldownAndEjectsAtOnce() {
    PassiveHealth h = health(CONFIG);
    h.failure(Failure.STATUS_429, 42 * S, false);
    assertThat(h.state()).isEqualTo(State.EJECTED);
    assertThat(seconds(h.cooldownRemainingNanos())).isEqualTo(42.0);

    PassiveHealth short429 = health(CONFIG);
    short429.failure(Failure.STATUS_429, S, false);
    assertThat(seconds(short429.cooldownRemainingNanos())).as("never shorter than the base").isEqualTo(5.0);

    PassiveHealth bare429 = health(CONFIG);
    bare429.failure(Failure.STATUS_429, 0, false);
    assertThat(bare429.state()).as("a 429 without retry-after is one failure").isEqualTo(State.HEALTHY);
  }

  @Test
  void withoutSlowStartRecoveryIsStraightToHealthy() {
    OutlierDetectionConfig noRamp = new OutlierDetectionConfig(true, 1, 0.5, 10, Duration.ofSeconds(30),
        Duration.ofSeconds(5), Duration.ofSeconds(60), 1, Duration.ZERO);
    PassiveHealth h = health(noRamp);
    h.failure(Failure.STATUS_5XX, 0, false);
    now += 5 * S;
    assertThat(h.tryAdmit()).isEqualTo(Admission.CANARY);
    h.success(true);
    assertThat(h.state()).isEqualTo(State.HEALTHY);
    assertThat(h.weightFactor()).isEqualTo(1.0);
  }

  @Test
  void requestsAdmittedBeforeTheEjectionDoNotExtendIt() {
    PassiveHealth h = health(CONFIG);
    fail(h, 3);
    long until = h.cooldownRemainingNanos();
    fail(h, 5); // stragglers that were already in flight
    h.success(false);
    assertThat(h.cooldownRemainingNanos()).isEqualTo(until);
    assertThat(changes).containsExactly("HEALTHY>EJECTED");
  }
}
