package io.llmproxy.testing;

import io.vertx.core.Future;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.IntFunction;

/** Runs many requests with a fixed number in flight, for tests that need counts rather than one exchange. */
public final class Load {
  private Load() {}

  /**
   * Sends {@code total} requests, {@code concurrency} at a time (each worker starts its next request
   * when its previous one completes), and returns the results in request order. Fails on the first
   * failed request, or when the whole run takes longer than {@code timeoutSeconds}.
   */
  public static <T> List<T> run(int total, int concurrency, long timeoutSeconds, IntFunction<Future<T>> request) {
    AtomicInteger next = new AtomicInteger();
    AtomicInteger finished = new AtomicInteger();
    AtomicReferenceArray<T> results = new AtomicReferenceArray<>(total);
    CompletableFuture<Void> done = new CompletableFuture<>();
    Runnable worker = new Runnable() {
      @Override
      public void run() {
        int i = next.getAndIncrement();
        if (i >= total || done.isDone()) {
          return;
        }
        request.apply(i).onComplete(ar -> {
          if (ar.failed()) {
            done.completeExceptionally(ar.cause());
            return;
          }
          results.set(i, ar.result());
          if (finished.incrementAndGet() == total) {
            done.complete(null);
          } else {
            run();
          }
        });
      }
    };
    for (int w = 0; w < Math.min(concurrency, total); w++) {
      worker.run();
    }
    try {
      done.get(timeoutSeconds, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException("load run of " + total + " requests did not complete: " + finished.get()
          + " done", e);
    }
    List<T> out = new ArrayList<>(total);
    for (int i = 0; i < total; i++) {
      out.add(results.get(i));
    }
    return out;
  }
}
