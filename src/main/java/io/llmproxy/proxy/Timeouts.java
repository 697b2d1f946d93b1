package io.llmproxy.proxy;

import io.netty.util.HashedWheelTimer;
import io.netty.util.Timeout;
import io.vertx.core.Context;
import java.util.concurrent.TimeUnit;

/**
 * The request timeouts (total, first token, idle) on one hashed timer wheel (Netty's) for the whole
 * gateway, instead of a Vert.x timer each. Almost every request ends long before its timeouts, so
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

  @Override
  public void close() {
    wheel.stop();
  }
}
