package io.llmproxy.proxy;

import io.netty.util.concurrent.ScheduledFuture;
import io.vertx.core.Context;
import io.vertx.core.internal.ContextInternal;
import java.util.concurrent.TimeUnit;

/**
 * The request timeouts (total, first token, idle, hedge, the client's body and send) as tasks on the
 * Netty event loop of the request's context, without Vert.x's timer map and without another thread.
 * Almost every request ends long before its timeouts, so what matters is that arming and cancelling
 * are cheap: on the loop's own scheduled-task queue they are an insert and a removal, both on the
 * thread that runs the request (a timer wheel on a thread of its own cost two cross-thread queue
 * operations and that thread's wake-ups every 10 ms). A timeout that fires runs dispatched on the
 * request's context, like everything else about the request.
 */
public final class Timeouts {

  /** Runs {@code action} on {@code context} after {@code delayMs}, unless the returned timer is cancelled first. */
  public Timer schedule(Context context, long delayMs, Runnable action) {
    Timer t = new Timer((ContextInternal) context, action);
    t.task = t.context.nettyEventLoop().schedule(t, Math.max(1, delayMs), TimeUnit.MILLISECONDS);
    return t;
  }

  /** A pending timeout; see {@link #schedule}. */
  public static final class Timer implements Runnable {
    private final ContextInternal context;
    private final Runnable action;
    private ScheduledFuture<?> task;
    private boolean cancelled;

    private Timer(ContextInternal context, Runnable action) {
      this.context = context;
      this.action = action;
    }

    /** The action will not run (if it has not yet). */
    public void cancel() {
      cancelled = true;
      task.cancel(false);
    }

    @Override
    public void run() {
      if (!cancelled) {
        context.dispatch(action);
      }
    }
  }

  /**
   * A timeout on silence: {@code onQuiet} runs on {@code context} once {@code timeoutNanos} pass
   * with no {@link Quiet#touch}. It takes one scheduled task per quiet period, re-armed lazily when
   * it finds there was activity, instead of one per touch (a touch is a field write). Everything
   * about it runs on {@code context}.
   */
  public Quiet quiet(Context context, long timeoutNanos, Runnable onQuiet) {
    Quiet q = new Quiet(context, timeoutNanos, onQuiet);
    q.arm(timeoutNanos);
    return q;
  }

  /** See {@link #quiet}. */
  public final class Quiet {
    private final Context context;
    private final long timeoutNanos;
    private final Runnable onQuiet;
    private long lastNanos = System.nanoTime();
    private Timer pending;
    private boolean cancelled;
    private boolean suspended;

    private Quiet(Context context, long timeoutNanos, Runnable onQuiet) {
      this.context = context;
      this.timeoutNanos = timeoutNanos;
      this.onQuiet = onQuiet;
    }

    /** Something arrived at {@code nowNanos} ({@link System#nanoTime}): the silence starts again. */
    public void touch(long nowNanos) {
      lastNanos = nowNanos;
    }

    /** The reader stopped reading on purpose: the silence from now on does not count, until {@link #resume}. */
    public void suspend() {
      suspended = true;
    }

    /** Reading again at {@code nowNanos}: the silence starts from there. */
    public void resume(long nowNanos) {
      suspended = false;
      lastNanos = nowNanos;
    }

    public void cancel() {
      cancelled = true;
      if (pending != null) {
        pending.cancel();
        pending = null;
      }
    }

    private void arm(long delayNanos) {
      pending = schedule(context, TimeUnit.NANOSECONDS.toMillis(delayNanos), () -> {
        pending = null;
        if (cancelled) {
          return;
        }
        if (suspended) {
          arm(timeoutNanos);
          return;
        }
        long quiet = System.nanoTime() - lastNanos;
        if (quiet >= timeoutNanos) {
          onQuiet.run();
        } else {
          arm(timeoutNanos - quiet);
        }
      });
    }
  }
}
