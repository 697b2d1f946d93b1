package io.llmproxy.sim;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import java.util.Arrays;

/**
 * Runs delayed steps on one event loop with a single Vert.x periodic timer that ticks every
 * millisecond while anything is due, instead of one Vert.x timer per step. Thousands of streams
 * that each emit a token every few milliseconds would otherwise each set a timer per token.
 *
 * <p>Steps due within {@value #SPAN_MS} ms go into a wheel of one slot per millisecond; later ones
 * get their own Vert.x timer. A step runs at the first tick at or after its due time, so never
 * early and about a millisecond late at most (when the event loop keeps up).
 * Cancelling is up to the step itself: a stopped step does nothing when it runs.
 *
 * <p>Not thread-safe: used from its event loop only.
 */
final class TickClock implements Handler<Long> {

  /** A step that can be scheduled on a clock; at most once at a time. */
  abstract static class Step implements Handler<Long> {
    private long dueMillis;

    /** Runs the step (it checks itself whether it was stopped meanwhile). */
    abstract void fire();

    /** The far-future path: a plain Vert.x timer fired. */
    @Override
    public final void handle(Long timerId) {
      fire();
    }
  }

  static final int SPAN_MS = 1024;
  private static final int MASK = SPAN_MS - 1;

  private final Vertx vertx;
  private final Step[][] slots = new Step[SPAN_MS][];
  private final int[] sizes = new int[SPAN_MS];
  private int pending;
  private long nextTick;
  private long periodicId = -1;
  /** An emptied slot array, ready to take the place of the next slot that runs. */
  private Step[] spare;

  TickClock(Vertx vertx) {
    this.vertx = vertx;
  }

  /**
   * Runs {@code step} after {@code delayMillis} (at least 1). Returns the id of a Vert.x timer to
   * cancel for long delays, else -1.
   */
  long schedule(Step step, long delayMillis) {
    if (delayMillis >= SPAN_MS) {
      return vertx.setTimer(delayMillis, step);
    }
    long nowNanos = System.nanoTime();
    if (periodicId < 0) {
      nextTick = nowNanos / 1_000_000;
      periodicId = vertx.setPeriodic(1, this);
    }
    // Rounded up, so that a step never runs early.
    step.dueMillis = (nowNanos + Math.max(1, delayMillis) * 1_000_000 + 999_999) / 1_000_000;
    add((int) (step.dueMillis & MASK), step);
    pending++;
    return -1;
  }

  private void add(int slot, Step step) {
    Step[] steps = slots[slot];
    int size = sizes[slot];
    if (steps == null) {
      steps = slots[slot] = new Step[8];
    } else if (size == steps.length) {
      steps = slots[slot] = Arrays.copyOf(steps, size * 2);
    }
    steps[size] = step;
    sizes[slot] = size + 1;
  }

  @Override
  public void handle(Long timerId) {
    long now = System.nanoTime() / 1_000_000;
    while (nextTick <= now && pending > 0) {
      int slot = (int) (nextTick & MASK);
      int size = sizes[slot];
      if (size > 0) {
        // Detach the slot first: a step may schedule into this very slot while it runs.
        Step[] steps = slots[slot];
        slots[slot] = spare;
        sizes[slot] = 0;
        for (int i = 0; i < size; i++) {
          Step step = steps[i];
          steps[i] = null;
          if (step.dueMillis <= nextTick) {
            pending--;
            step.fire();
          } else {
            add(slot, step); // due a whole span later (put here while the loop lagged)
          }
        }
        spare = steps;
      }
      nextTick++;
    }
    if (pending == 0 && periodicId >= 0) {
      vertx.cancelTimer(periodicId);
      periodicId = -1;
    }
  }
}
