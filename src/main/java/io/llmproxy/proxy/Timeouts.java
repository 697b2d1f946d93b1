package io.llmproxy.proxy;

import io.netty.channel.EventLoop;
import io.netty.util.concurrent.FastThreadLocal;
import io.netty.util.concurrent.ScheduledFuture;
import io.vertx.core.Context;
import io.vertx.core.internal.ContextInternal;
import java.util.ArrayList;
import java.util.concurrent.TimeUnit;

/**
 * The request timeouts (total, first token, idle, hedge, the client's body and send) as tasks on the
 * Netty event loop of the request's context, without Vert.x's timer map and without another thread.
 * Almost every request ends long before its timeouts, so what matters is that arming and cancelling
 * are cheap: on the loop's own scheduled-task queue they are an insert and a removal, both on the
 * thread that runs the request (a timer wheel on a thread of its own cost two cross-thread queue
 * operations and that thread's wake-ups every 10 ms). A timeout that fires runs dispatched on the
 * request's context, like everything else about the request.
 *
 * <p>Cheaper still is never to schedule one: a timer armed on its loop joins a batch that is
 * scheduled once the loop's current run ends (one task, queued when the batch opens). Many are
 * cancelled before that, in the same run: the client's body timeout when the body came in the read
 * that brought the request, a non-streaming answer's idle timeout when its head and body came
 * together. Each timer keeps the deadline it was armed with, so joining late does not move it.
 */
public final class Timeouts {

  /** The timers armed during the current run of this thread's loop, not yet scheduled. */
  private static final FastThreadLocal<Batch> BATCH = new FastThreadLocal<>() {
    @Override
    protected Batch initialValue() {
      return new Batch();
    }
  };

  /** Runs {@code action} on {@code context} after {@code delayMs}, unless the returned timer is cancelled first. */
  public Timer schedule(Context context, long delayMs, Runnable action) {
    ContextInternal ctx = (ContextInternal) context;
    Timer t = new Timer(ctx, action, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.max(1, delayMs)));
    EventLoop loop = ctx.nettyEventLoop();
    if (loop.inEventLoop()) {
      BATCH.get().add(t, loop);
    } else {
      t.arm();
    }
    return t;
  }

  /** Timers waiting for the end of their loop's current run; see {@link Timeouts}. */
  private static final class Batch implements Runnable {
    private final ArrayList<Timer> timers = new ArrayList<>();

    void add(Timer t, EventLoop loop) {
      if (timers.isEmpty()) {
        loop.execute(this);
      }
      timers.add(t);
    }

    @Override
    public void run() {
      for (int i = 0; i < timers.size(); i++) {
        Timer t = timers.get(i);
        if (!t.cancelled) {
          t.arm();
        }
      }
      timers.clear();
    }
  }

  /** A pending timeout; see {@link #schedule}. */
  public static final class Timer implements Runnable {
    private final ContextInternal context;
    private final Runnable action;
    private final long deadlineNanos;
    private ScheduledFuture<?> task;
    private boolean cancelled;

    private Timer(ContextInternal context, Runnable action, long deadlineNanos) {
      this.context = context;
      this.action = action;
      this.deadlineNanos = deadlineNanos;
    }

    private void arm() {
      task = context.nettyEventLoop().schedule(this, Math.max(0, deadlineNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
    }

    /** The action will not run (if it has not yet). */
    public void cancel() {
      cancelled = true;
      if (task != null) {
        task.cancel(false);
      }
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
