package io.llmproxy.proxy;

import io.netty.util.HashedWheelTimer;
import io.netty.util.Timeout;
import io.vertx.core.Context;
import java.util.concurrent.TimeUnit;

/**
 * The request timeouts (total, first token, idle, the client's body) on one hashed timer wheel
 * (Netty's) for the whole gateway, instead of a Vert.x timer each. Almost every request ends long before its timeouts, so
 * what matters is that arming and cancelling are cheap: on the wheel they are an enqueue, where a
 * Vert.x timer costs a map entry and a priority-queue insert and removal on the event loop. A
 * timeout that fires hops back to the request's own context, so its handler runs on the request's
 * event loop like everything else about the request. Resolution is {@link #TICK_MS} ms.
 */
public final class Timeouts implements AutoCloseable {
  static final long TICK_MS = 10;

  private final HashedWheelTimer wheel;

  public Timeouts() {
    this.wheel = new HashedWheelTimer(r -> {
      Thread t = new Thread(r, "llmproxy-timeouts");
      t.setDaemon(true);
      return t;
    }, TICK_MS, TimeUnit.MILLISECONDS, 512);
    wheel.start();
  }

  /** Runs {@code action} on {@code context} after {@code delayMs}, unless the returned handle is cancelled first. */
  public Timeout schedule(Context context, long delayMs, Runnable action) {
    return wheel.newTimeout(t -> context.runOnContext(v -> action.run()), delayMs, TimeUnit.MILLISECONDS);
  }

  /**
   * A timeout on silence: {@code onQuiet} runs on {@code context} once {@code timeoutNanos} pass
   * with no {@link Quiet#touch}. It takes one wheel entry per quiet period, re-armed lazily when it
   * finds there was activity, instead of one per touch (a touch is a field write). Everything about
   * it runs on {@code context}.
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
    private Timeout pending;
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
      pending = schedule(context, Math.max(1, TimeUnit.NANOSECONDS.toMillis(delayNanos)), () -> {
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

  @Override
  public void close() {
    wheel.stop();
  }
}
