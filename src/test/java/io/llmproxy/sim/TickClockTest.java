package io.llmproxy.sim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class TickClockTest {

  private static Vertx vertx;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void stop() throws Exception {
    vertx.close().await(5, TimeUnit.SECONDS);
  }

  /** Records when it fired, and reschedules itself {@code repeats} times. */
  private static final class Probe extends TickClock.Step {
    final TickClock clock;
    final long delayMillis;
    final List<long[]> fired;
    int repeats;
    long dueNanos;

    Probe(TickClock clock, long delayMillis, int repeats, List<long[]> fired) {
      this.clock = clock;
      this.delayMillis = delayMillis;
      this.repeats = repeats;
      this.fired = fired;
    }

    void schedule() {
      dueNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delayMillis);
      clock.schedule(this, delayMillis);
    }

    @Override
    void fire() {
      fired.add(new long[] {dueNanos, System.nanoTime()});
      if (--repeats > 0) {
        schedule();
      }
    }
  }

  @Test
  void everyStepFiresOnceNotBeforeItIsDue() {
    List<long[]> fired = new CopyOnWriteArrayList<>();
    int steps = 300;
    int repeats = 3;
    vertx.runOnContext(v -> {
      TickClock clock = new TickClock(vertx);
      for (int i = 0; i < steps; i++) {
        new Probe(clock, ThreadLocalRandom.current().nextLong(1, 60), repeats, fired).schedule();
      }
      new Probe(clock, TickClock.SPAN_MS + 5, 1, fired).schedule();
    });

    await().atMost(Duration.ofSeconds(5)).until(() -> fired.size() == steps * repeats + 1);
    for (long[] f : fired) {
      assertThat(f[1]).as("never early").isGreaterThanOrEqualTo(f[0]);
    }
    await().during(Duration.ofMillis(100)).atMost(Duration.ofSeconds(1))
        .until(() -> fired.size() == steps * repeats + 1);
  }
}
