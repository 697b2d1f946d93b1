package io.llmproxy.usage;

import static java.util.Objects.requireNonNull;

import io.llmproxy.config.UsageHookConfig;
import io.llmproxy.routing.Backoff;
import io.llmproxy.store.Store;
import io.llmproxy.usage.UsageMetrics.Outcome;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.net.MalformedURLException;
import java.net.URI;
import java.net.URL;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sends the usage spool to {@code usage_hook.url}, at least once per event, off the request path
 * (SPEC §9). Events are read from {@link Store#spool()} in passes, oldest first, and POSTed as JSON, up
 * to {@link #MAX_IN_FLIGHT} at once: they start in spool order but may arrive out of it (and do after
 * an outage). Each carries its request id as {@code Idempotency-Key} (and {@code X-Request-Id}): after
 * a crash or a lost answer the same event may arrive again, and the receiver deduplicates on that key.
 *
 * <p>An event leaves the spool only when the webhook answers 2xx. A failed attempt (connection error,
 * no answer within {@code usage_hook.timeout}, any other status) is retried at once up to
 * {@code usage_hook.retry} times, with full-jitter backoff. When those are used up the event stays in
 * the spool, to be sent again in the next pass, and the whole delivery backs off (exponentially, up to
 * {@link #MAX_ROUND_BACKOFF}, reset by the next success), then goes on one event at a time until one
 * succeeds. No event is ever dropped, not even one the webhook rejects with a 4xx: that is logged as a
 * WARN, since it usually means a misconfigured receiver, and billing must not lose the event
 * meanwhile. Because a failed event waits for the next pass instead of being retried first, one event
 * the webhook keeps rejecting does not hold back the others.
 *
 * <p>{@link #wake} (called when the recorder commits) starts delivery within about a millisecond; a
 * poll every {@link #POLL_INTERVAL} catches anything a wake-up missed, and on start the events left
 * by a previous run go first. Removals from the spool are committed with the recorder's next batch or
 * within a poll interval; a crash before that re-delivers them, which at-least-once allows.
 *
 * <p>All state lives on one Vert.x context; spool reads and commits run on worker threads.
 */
public final class WebhookDelivery implements AutoCloseable {
  /** Events POSTed at once while the webhook answers. */
  public static final int MAX_IN_FLIGHT = 8;
  /** Longest wait between two delivery rounds while the webhook keeps failing. */
  public static final Duration MAX_ROUND_BACKOFF = Duration.ofSeconds(5);
  /** How often the spool is looked at when nothing wakes the delivery, and removals are committed. */
  public static final Duration POLL_INTERVAL = Duration.ofSeconds(1);
  static final int FETCH_BATCH = 64;
  private static final Duration RETRY_INITIAL = Duration.ofMillis(100);
  private static final Duration RETRY_MAX = Duration.ofSeconds(2);
  private static final Duration ROUND_INITIAL = Duration.ofMillis(500);
  /** The shortest time between two passes that take up failed events again; doubles while they keep failing. */
  private static final Duration PASS_INITIAL = Duration.ofSeconds(1);
  private static final long REJECTION_WARN_EVERY_NANOS = TimeUnit.MINUTES.toNanos(1);
  private static final Logger log = LoggerFactory.getLogger(WebhookDelivery.class);

  private final Vertx vertx;
  private final Context context;
  private final Store store;
  private final URI url;
  /** {@link #url} as the logs show it ({@link #forLogs}). */
  private final String shownUrl;
  private final long timeoutMs;
  private final int retries;
  private final HttpClientAgent client;
  private final RequestOptions post;
  private final Counter delivered;
  private final Counter retried;
  private final Counter failed;
  private final AtomicBoolean wakeScheduled = new AtomicBoolean();
  private volatile boolean closed;

  // Confined to the context.
  private final Deque<Item> pending = new ArrayDeque<>();
  private final List<Drain> drains = new ArrayList<>();
  /** Highest sequence number read from the spool in this pass over it. */
  private long cursor;
  /** Events being sent, so that a new pass does not send one twice at once. */
  private final Set<Long> inFlight = new HashSet<>();
  /** An event failed in this pass and is still in the spool, behind the cursor. */
  private boolean leftBehind;
  /** Passes in a row that left failed events behind, and when the next may start. */
  private int failedPasses;
  private long nextPassNanos = System.nanoTime();
  private long nextRejectionWarnNanos = System.nanoTime();
  private boolean fetching;
  private boolean fetchAgain;
  /** An event gave up in this pass: launch nothing more, back off once the rest have finished. */
  private boolean passFailed;
  /** Rounds failed in a row; while above 0, one event at a time. */
  private int failedRounds;
  /** The current run of failures was logged as a WARN; the rest of it goes to DEBUG. */
  private boolean outageLogged;
  private long backoffTimer = -1;
  private long pollTimer = -1;
  private long removedSinceCommit;
  private boolean committing;

  /** One spooled event. */
  private record Item(long seq, byte[] body, String requestId) {}

  private record Drain(Promise<Void> promise, long timer) {}

  /**
   * Starts delivering, beginning with what the spool holds from a previous run.
   *
   * @param config   an enabled {@code usage_hook}: its url, per-attempt timeout and retries
   * @param registry where the delivery outcomes and {@code llmproxy_usage_spool_events} are registered
   */
  public WebhookDelivery(Vertx vertx, Store store, UsageHookConfig config, MeterRegistry registry) {
    this.vertx = requireNonNull(vertx, "vertx");
    this.store = requireNonNull(store, "store");
    this.url = requireNonNull(requireNonNull(config, "config").url(), "usage_hook.url");
    this.shownUrl = forLogs(url);
    this.timeoutMs = Math.max(1, requireNonNull(config.timeout(), "usage_hook.timeout").toMillis());
    this.retries = Math.max(0, config.retry());
    UsageMetrics metrics = new UsageMetrics(requireNonNull(registry, "registry"));
    this.delivered = metrics.counter(Outcome.DELIVERED);
    this.retried = metrics.counter(Outcome.RETRIED);
    this.failed = metrics.counter(Outcome.FAILED);
    UsageMetrics.spoolGauge(registry, store);
    try {
      this.post = new RequestOptions().setMethod(HttpMethod.POST).setAbsoluteURI(url.toURL());
    } catch (MalformedURLException | IllegalArgumentException e) {
      throw new IllegalArgumentException("usage_hook.url: not an http(s) URL: " + url, e);
    }
    this.client = vertx.createHttpClient(new HttpClientOptions()
            .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, timeoutMs)).setKeepAlive(true),
        new PoolOptions().setHttp1MaxSize(MAX_IN_FLIGHT));
    long waiting = spoolSize();
    if (waiting > 0) {
      log.info("{} usage events in the spool from a previous run; delivering them to {}", waiting, shownUrl);
    }
    this.context = vertx.getOrCreateContext();
    context.runOnContext(v -> start());
  }

  private void start() {
    if (closed) {
      return;
    }
    pollTimer = vertx.setPeriodic(POLL_INTERVAL.toMillis(), id -> poll());
    pump();
  }

  /** New events were committed to the spool: deliver them now. Thread-safe and cheap; coalesces. */
  public void wake() {
    if (!closed && wakeScheduled.compareAndSet(false, true)) {
      context.runOnContext(v -> {
        wakeScheduled.set(false);
        pump();
      });
    }
  }

  /**
   * Delivers what is spooled, for up to {@code max}: cuts a running backoff short, and completes
   * when the spool is empty or {@code max} has passed, whichever comes first. Never fails; what is
   * left stays in the spool for the next start (logged). For graceful shutdown, after the recorder
   * has closed.
   */
  public Future<Void> drain(Duration max) {
    requireNonNull(max, "max");
    Promise<Void> promise = Promise.promise();
    context.runOnContext(v -> {
      if (closed || spoolSize() == 0) {
        promise.tryComplete();
        return;
      }
      long timer = vertx.setTimer(Math.max(1, max.toMillis()), id -> {
        drains.removeIf(d -> d.promise() == promise);
        if (!closed) {
          log.warn("{} usage events not delivered within {}; they stay in the spool for the next start",
              spoolSize(), max);
        }
        promise.tryComplete();
      });
      drains.add(new Drain(promise, timer));
      if (backoffTimer >= 0) {
        vertx.cancelTimer(backoffTimer);
        backoffTimer = -1;
        resume();
      } else {
        pump();
      }
    });
    return promise.future();
  }

  // ---- the delivery loop (on the context)

  private void pump() {
    if (closed || passFailed || backoffTimer >= 0) {
      return;
    }
    int limit = failedRounds > 0 ? 1 : MAX_IN_FLIGHT;
    while (inFlight.size() < limit && !pending.isEmpty()) {
      Item item = pending.poll();
      inFlight.add(item.seq());
      attempt(item, 0);
    }
    if (pending.isEmpty()) {
      fetch();
    }
  }

  private void fetch() {
    if (fetching) {
      fetchAgain = true;
      return;
    }
    fetching = true;
    fetchAgain = false;
    long from = cursor;
    context.<List<Map.Entry<Long, byte[]>>>executeBlocking(() -> store.spool().after(from, FETCH_BATCH), true)
        .onComplete(ar -> {
          fetching = false;
          if (closed) {
            return;
          }
          if (ar.failed()) {
            log.warn("cannot read the usage spool: {}", ar.cause().toString());
            passFailed = true;
            maybeBackOff();
            return;
          }
          for (Map.Entry<Long, byte[]> e : ar.result()) {
            cursor = e.getKey();
            if (!inFlight.contains(e.getKey())) {
              pending.add(new Item(e.getKey(), e.getValue(), requestId(e.getValue())));
            }
          }
          if (ar.result().isEmpty()) {
            endOfSpool();
          }
          if (!ar.result().isEmpty() || fetchAgain) {
            pump();
          } else {
            completeDrainsIfEmpty();
          }
        });
  }

  /**
   * The pass reached the newest event. If some failed on the way, a new pass from the oldest takes
   * them up again, but not sooner than a backoff after the previous such pass (waived while a drain
   * waits), so an event the webhook keeps rejecting costs a few requests every few seconds rather
   * than a stream of them.
   */
  private void endOfSpool() {
    if (!leftBehind) {
      failedPasses = 0;
      return;
    }
    long now = System.nanoTime();
    if (drains.isEmpty() && now - nextPassNanos < 0) {
      return; // a later fetch (wake-up or poll) looks again
    }
    nextPassNanos = now + Math.min(MAX_ROUND_BACKOFF.toNanos(), PASS_INITIAL.toNanos() << Math.min(failedPasses, 20));
    failedPasses++;
    cursor = 0;
    leftBehind = false;
    fetchAgain = true;
  }

  private void attempt(Item item, int attempt) {
    send(item).onComplete(ar -> {
      if (closed) {
        return;
      }
      int status = ar.succeeded() ? ar.result() : 0;
      if (status >= 200 && status < 300) {
        succeeded(item);
        return;
      }
      if (attempt < retries) {
        retried.increment();
        long delayMs = Math.max(1, TimeUnit.NANOSECONDS.toMillis(Backoff.fullJitterNanos(RETRY_INITIAL, RETRY_MAX, attempt)));
        vertx.setTimer(delayMs, id -> {
          if (!closed) {
            attempt(item, attempt + 1);
          }
        });
        return;
      }
      gaveUp(item, status, ar.failed() ? ar.cause().toString() : "status " + status);
    });
  }

  private void succeeded(Item item) {
    try {
      store.spool().remove(item.seq());
    } catch (RuntimeException e) {
      log.warn("cannot remove a delivered usage event from the spool (it will be delivered again): {}", e.toString());
    }
    removedSinceCommit++;
    delivered.increment();
    inFlight.remove(item.seq());
    if (outageLogged) {
      log.info("the usage webhook accepts events again after {} failed rounds; {} waiting", failedRounds, spoolSize());
      outageLogged = false;
    }
    failedRounds = 0;
    completeDrainsIfEmpty();
    if (passFailed) {
      maybeBackOff();
    } else {
      pump();
    }
  }

  private void gaveUp(Item item, int status, String why) {
    failed.increment();
    inFlight.remove(item.seq());
    passFailed = true;
    leftBehind = true;
    boolean rejected = status >= 400 && status < 500 && status != 408 && status != 429;
    long now = System.nanoTime();
    if (rejected && now - nextRejectionWarnNanos >= 0) {
      nextRejectionWarnNanos = now + REJECTION_WARN_EVERY_NANOS;
      log.warn("the usage webhook rejected event {} with status {}; it stays in the spool and will be sent again"
          + " (check the receiver: billing events are never dropped; more rejections this minute go to DEBUG)",
          item.requestId(), status);
    } else if (!rejected && !outageLogged) {
      outageLogged = true;
      log.warn("cannot deliver usage events to {} ({}); they stay in the spool, retrying with backoff", shownUrl, why);
    } else {
      log.debug("usage webhook still failing ({}); round {}", why, failedRounds + 1);
    }
    maybeBackOff();
  }

  /** Once a failure has no request left in flight beside it, waits, then goes on. */
  private void maybeBackOff() {
    if (!passFailed || !inFlight.isEmpty() || backoffTimer >= 0 || closed) {
      return;
    }
    // While a drain waits (shutdown), the shortest backoff: its time is bounded, and it is the last chance.
    int exponent = drains.isEmpty() ? Math.min(failedRounds, 20) : 0;
    long ceiling = Math.min(MAX_ROUND_BACKOFF.toMillis(), ROUND_INITIAL.toMillis() << exponent);
    long delayMs = Math.max(1, ceiling / 2 + ThreadLocalRandom.current().nextLong(ceiling / 2 + 1));
    failedRounds++;
    backoffTimer = vertx.setTimer(delayMs, id -> {
      backoffTimer = -1;
      resume();
    });
  }

  private void resume() {
    passFailed = false;
    pump();
  }

  private void poll() {
    if (closed) {
      return;
    }
    pump();
    if (removedSinceCommit > 0 && !committing) {
      committing = true;
      removedSinceCommit = 0;
      context.executeBlocking(() -> {
        store.commit();
        return null;
      }, false).onComplete(ar -> {
        committing = false;
        if (ar.failed() && !closed) {
          log.warn("cannot commit removals from the usage spool (delivered events may be sent again): {}",
              ar.cause().toString());
        }
      });
    }
  }

  private void completeDrainsIfEmpty() {
    if (!drains.isEmpty() && spoolSize() == 0) {
      for (Drain d : drains) {
        vertx.cancelTimer(d.timer());
        d.promise().tryComplete();
      }
      drains.clear();
    }
  }

  // ---- one HTTP attempt

  /** The status the webhook answered (its body read and discarded), or a failure, within the timeout. */
  private Future<Integer> send(Item item) {
    Promise<Integer> result = Promise.promise();
    long timer = vertx.setTimer(timeoutMs, id -> result.tryFail(
        new TimeoutException("no answer from the usage webhook within " + timeoutMs + " ms")));
    client.request(post).onComplete(ar -> {
      if (ar.failed()) {
        result.tryFail(ar.cause());
        return;
      }
      HttpClientRequest req = ar.result();
      if (result.future().isComplete()) {
        req.reset();
        return;
      }
      result.future().onFailure(x -> req.reset());
      req.putHeader(HttpHeaders.CONTENT_TYPE, "application/json");
      if (item.requestId() != null) {
        req.putHeader("Idempotency-Key", item.requestId());
        req.putHeader("X-Request-Id", item.requestId());
      }
      req.send(Buffer.buffer(item.body()))
          .compose(resp -> resp.body().map(body -> resp.statusCode()))
          .onComplete(r -> {
            if (r.succeeded()) {
              result.tryComplete(r.result());
            } else {
              result.tryFail(r.cause());
            }
          });
    });
    return result.future().andThen(r -> vertx.cancelTimer(timer));
  }

  private static String requestId(byte[] json) {
    try {
      return new JsonObject(Buffer.buffer(json)).getString("request_id");
    } catch (RuntimeException e) {
      return null;
    }
  }

  private long spoolSize() {
    try {
      return store.spool().size();
    } catch (RuntimeException e) {
      return -1;
    }
  }

  /**
   * Stops delivering: no new attempt starts, answers still on their way are ignored, and what was not
   * delivered stays in the spool for the next start. Pending {@link #drain}s complete. Does not block.
   * Close it before the store.
   */
  @Override
  public void close() {
    closed = true;
    context.runOnContext(v -> {
      if (pollTimer >= 0) {
        vertx.cancelTimer(pollTimer);
      }
      if (backoffTimer >= 0) {
        vertx.cancelTimer(backoffTimer);
      }
      for (Drain d : drains) {
        vertx.cancelTimer(d.timer());
        d.promise().tryComplete();
      }
      drains.clear();
      client.close();
    });
  }

  /**
   * The webhook's URL without its user info and query, either of which may carry the receiver's
   * secret ({@code usage_hook} has no header of its own for one): never logged.
   */
  static String forLogs(URI u) {
    String port = u.getPort() < 0 ? "" : ":" + u.getPort();
    String path = u.getRawPath() == null ? "" : u.getRawPath();
    return u.getScheme() + "://" + u.getHost() + port + path + (u.getRawQuery() == null ? "" : "?...");
  }
}
