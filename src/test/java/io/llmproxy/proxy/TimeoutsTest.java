package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The request timers: armed on the loop they join a batch scheduled when the loop's current run
 * ends, so whether a timer is cancelled before or after that, and whether it was armed on or off its
 * loop, it fires once at its deadline or never.
 */
class TimeoutsTest {
  private final Timeouts timeouts = new Timeouts();
  private Vertx vertx;
  private Context context;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    context = vertx.getOrCreateContext();
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  @Test
  void aTimerArmedOnItsLoopFiresOnItsContextNoEarlierThanItsDelay() throws Exception {
    CompletableFuture<Long> firedAfterNanos = new CompletableFuture<>();
    AtomicReference<Context> firedOn = new AtomicReference<>();
    context.runOnContext(v -> {
      long armed = System.nanoTime();
      timeouts.schedule(context, 60, () -> {
        firedOn.set(Vertx.currentContext());
        firedAfterNanos.complete(System.nanoTime() - armed);
      });
    });
    assertThat(firedAfterNanos.get(10, TimeUnit.SECONDS)).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(60));
    assertThat(firedOn.get()).isSameAs(context);
  }

  @Test
  void aTimerCancelledInTheRunThatArmedItNeverFires() {
    AtomicBoolean cancelledFired = new AtomicBoolean();
    AtomicBoolean later = new AtomicBoolean();
    context.runOnContext(v -> {
      timeouts.schedule(context, 20, () -> cancelledFired.set(true)).cancel();
      timeouts.schedule(context, 80, () -> later.set(true));
    });
    await().atMost(Duration.ofSeconds(10)).untilTrue(later);
    assertThat(cancelledFired).as("the timer cancelled before its batch was scheduled").isFalse();
  }

  @Test
  void aTimerCancelledInALaterRunNeverFires() {
    AtomicBoolean cancelledFired = new AtomicBoolean();
    AtomicBoolean later = new AtomicBoolean();
    context.runOnContext(v -> {
      // far enough out that a loop descheduled for a while still cancels it first
      Timeouts.Timer t = timeouts.schedule(context, 300, () -> cancelledFired.set(true));
      timeouts.schedule(context, 400, () -> later.set(true));
      // the next run, after this one's batch went to the scheduled-task queue
      context.runOnContext(v2 -> context.runOnContext(v3 -> t.cancel()));
    });
    await().atMost(Duration.ofSeconds(10)).untilTrue(later);
    assertThat(cancelledFired).as("the timer cancelled after its batch was scheduled").isFalse();
  }

  @Test
  void aTimerArmedOffItsLoopFiresOnItsContext() throws Exception {
    CompletableFuture<Context> firedOn = new CompletableFuture<>();
    timeouts.schedule(context, 10, () -> firedOn.complete(Vertx.currentContext()));
    assertThat(firedOn.get(10, TimeUnit.SECONDS)).isSameAs(context);
  }

  @Test
  void aQuietTimeoutRunsOnlyAfterSilence() {
    AtomicBoolean quiet = new AtomicBoolean();
    AtomicReference<Long> lastTouch = new AtomicReference<>();
    AtomicReference<Long> firedAt = new AtomicReference<>();
    context.runOnContext(v -> {
      Timeouts.Quiet q = timeouts.quiet(context, TimeUnit.MILLISECONDS.toNanos(80), () -> {
        firedAt.set(System.nanoTime());
        quiet.set(true);
      });
      // touched again 50 ms in: the silence starts over from there
      timeouts.schedule(context, 50, () -> {
        long now = System.nanoTime();
        lastTouch.set(now);
        q.touch(now);
      });
    });
    await().atMost(Duration.ofSeconds(10)).untilTrue(quiet);
    assertThat(firedAt.get() - lastTouch.get()).isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(80));
  }
}
