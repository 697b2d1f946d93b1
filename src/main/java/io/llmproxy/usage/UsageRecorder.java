package io.llmproxy.usage;

import static java.util.Objects.requireNonNull;

import io.llmproxy.store.Store;
import io.llmproxy.usage.UsageMetrics.Outcome;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.LongConsumer;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes usage events to the store off the event loops (SPEC §9). {@link #record} only enqueues; one
 * writer thread, {@code llmproxy-usage-writer}, takes everything queued as one batch, adds each event
 * to its key's daily totals, appends it to the usage spool when a webhook is configured, and makes the
 * whole batch durable with a single {@link Store#commit}: a group commit, so the cost of a commit is
 * shared by every request that ended while the previous one was running. An event is
 * <em>acknowledged</em> once that commit returns; from then on a {@code kill -9} cannot lose it.
 *
 * <p>The queue is unbounded in principle but capped at {@link #MAX_QUEUED} events: past that the disk
 * has not kept up for a long time, and growing further would end in an out-of-memory crash that loses
 * everything queued. Events over the cap are dropped and counted ({@code outcome="dropped"}), with one
 * ERROR log per burst. The same happens to events recorded after {@link #close} and to a batch the
 * store failed to write.
 *
 * <p>Quota counters are not kept here.
 */
public final class UsageRecorder implements AutoCloseable {
  /** Events queued and not yet written beyond which new ones are dropped. */
  public static final int MAX_QUEUED = 1_000_000;
  /** Most events written under one commit, so a backlog is acknowledged in steps rather than at its end. */
  static final int MAX_BATCH = 8_192;
  /** How long the writer sleeps when nothing wakes it; only bounds a lost wake-up. */
  private static final long IDLE_PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
  /**
   * The least time between commits under load: with the spool, 50 ms (what a {@code kill -9} can take
   * before acknowledgement, and the webhook's added delay); without it (totals only), a second, as for
   * the quota counters.
   */
  private static final long SPOOL_COMMIT_INTERVAL_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
  private static final long TOTALS_COMMIT_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);
  public static final String NO_KEY = "-";
  private static final Logger log = LoggerFactory.getLogger(UsageRecorder.class);

  private final Store store;
  private final boolean spoolForWebhook;
  private final int maxQueued;
  private final ConcurrentLinkedQueue<UsageEvent> queue = new ConcurrentLinkedQueue<>();
  private final AtomicInteger queued = new AtomicInteger();
  /** True while the writer is parked or about to park: the one producer that flips it wakes the writer. */
  private final AtomicBoolean idle = new AtomicBoolean();
  /** True from the first drop of a burst until the writer has caught up again: one ERROR per burst. */
  private final AtomicBoolean dropping = new AtomicBoolean();
  private final AtomicLong acknowledged = new AtomicLong();
  private final List<LongConsumer> listeners = new CopyOnWriteArrayList<>();
  /** Writes more to the store before each commit ({@link #beforeEachCommit}). */
  private volatile Runnable beforeCommit = () -> {};
  private final Counter recorded;
  private final Counter spooled;
  private final Counter dropped;
  private final Thread writer;
  private volatile boolean closed;

  /**
   * Starts the writer thread.
   *
   * @param spoolForWebhook also append each event to {@link Store#spool()} for {@link WebhookDelivery}
   * @param registry        where {@code llmproxy_usage_events_total} is registered
   */
  public UsageRecorder(Store store, boolean spoolForWebhook, MeterRegistry registry) {
    this(store, spoolForWebhook, registry, MAX_QUEUED);
  }

  UsageRecorder(Store store, boolean spoolForWebhook, MeterRegistry registry, int maxQueued) {
    this.store = requireNonNull(store, "store");
    this.maxQueued = maxQueued;
    this.spoolForWebhook = spoolForWebhook;
    UsageMetrics metrics = new UsageMetrics(requireNonNull(registry, "registry"));
    this.recorded = metrics.counter(Outcome.RECORDED);
    this.spooled = metrics.counter(Outcome.SPOOLED);
    this.dropped = metrics.counter(Outcome.DROPPED);
    this.writer = new Thread(this::run, "llmproxy-usage-writer");
    writer.setDaemon(true);
    writer.start();
  }

  /**
   * Queues one request's usage; call it exactly once per request. Never blocks: safe on an event
   * loop. The event is durable only once {@link #acknowledged()} counts it.
   */
  public void record(UsageEvent event) {
    requireNonNull(event, "event");
    if (closed) {
      drop(() -> "a usage event was recorded after the usage recorder closed; it is lost (request "
          + event.requestId() + ")");
      return;
    }
    if (queued.incrementAndGet() > maxQueued) {
      queued.decrementAndGet();
      drop(() -> "the usage queue holds " + maxQueued + " events: the store is not keeping up, and usage events"
          + " are being dropped until it does (llmproxy_usage_events_total{outcome=\"dropped\"})");
      return;
    }
    queue.add(event);
    recorded.increment();
    if (idle.compareAndSet(true, false)) {
      LockSupport.unpark(writer);
    }
  }

  /** Events made durable so far, in the order they were recorded. */
  public long acknowledged() {
    return acknowledged.get();
  }

  /**
   * Runs {@code write} on the writer thread before each group commit, so what it writes to the store
   * is committed with the events (the quota counters, which the requests counted before their events
   * were recorded). A failure of it is logged and does not hold back the events.
   */
  public void beforeEachCommit(Runnable write) {
    this.beforeCommit = requireNonNull(write, "write");
  }

  /**
   * Calls {@code listener} on the writer thread after each group commit, with {@link #acknowledged()}
   * at that moment. Keep it short: it delays the next batch. {@link WebhookDelivery#wake} is one.
   */
  public void onAcknowledged(LongConsumer listener) {
    listeners.add(requireNonNull(listener, "listener"));
  }

  private void drop(Supplier<String> message) {
    dropped.increment();
    if (dropping.compareAndSet(false, true)) {
      log.error(message.get());
    }
  }

  private void run() {
    List<UsageEvent> batch = new ArrayList<>(1024);
    while (true) {
      boolean stopping = closed;
      int written = writeBatch(batch);
      if (written > 0) {
        if (!closed && written < MAX_BATCH) { // a full batch: more is waiting, write it at once
          // Under load, events gather between commits: a commit serialises the changed pages and
          // writes them, and hundreds a second would cost more CPU than the requests they record.
          LockSupport.parkNanos(this, spoolForWebhook ? SPOOL_COMMIT_INTERVAL_NANOS : TOTALS_COMMIT_INTERVAL_NANOS);
        }
        continue;
      }
      if (stopping) {
        return;
      }
      dropping.set(false);
      idle.set(true);
      if (queue.isEmpty() && !closed) {
        LockSupport.parkNanos(this, IDLE_PARK_NANOS);
      }
      idle.set(false);
    }
  }

  /** Writes up to {@link #MAX_BATCH} queued events under one commit; how many (0 when none was queued). */
  private int writeBatch(List<UsageEvent> batch) {
    UsageEvent e;
    while (batch.size() < MAX_BATCH && (e = queue.poll()) != null) {
      batch.add(e);
    }
    int n = batch.size();
    if (n == 0) {
      return 0;
    }
    queued.addAndGet(-n);
    write(batch);
    batch.clear();
    return n;
  }

  /** A key's totals for one UTC day. */
  private record KeyDay(String keyId, LocalDate day) {}

  private void write(List<UsageEvent> batch) {
    try {
      // The batch's totals are summed per key and day first: one store write each, not one per event.
      Map<KeyDay, long[]> totals = new HashMap<>();
      for (UsageEvent e : batch) {
        KeyDay key = new KeyDay(e.keyId() == null ? NO_KEY : e.keyId(), LocalDate.ofInstant(e.timestamp(), ZoneOffset.UTC));
        long[] t = totals.computeIfAbsent(key, k -> new long[3]);
        t[0]++;
        t[1] += e.promptTokens();
        t[2] += e.completionTokens();
        if (spoolForWebhook) {
          store.spool().append(e.toJson());
        }
      }
      totals.forEach((k, t) -> store.addUsage(k.keyId(), k.day(), t[0], t[1], t[2]));
      try {
        beforeCommit.run();
      } catch (RuntimeException ex) {
        log.error("could not write alongside the usage events: {}", ex.toString(), ex);
      }
      store.commit();
    } catch (RuntimeException ex) {
      // A store that fails a write (disk full, closed) will not take the batch on a second try
      // either; retrying would only hold back the events behind it.
      dropped.increment(batch.size());
      log.error("could not write {} usage events to the store; they are lost: {}", batch.size(), ex.toString(), ex);
      return;
    }
    if (spoolForWebhook) {
      spooled.increment(batch.size());
    }
    long total = acknowledged.addAndGet(batch.size());
    for (LongConsumer l : listeners) {
      try {
        l.accept(total);
      } catch (RuntimeException ex) {
        log.warn("a usage acknowledgement listener failed: {}", ex.toString(), ex);
      }
    }
  }

  /**
   * Writes and commits everything queued, then stops the writer thread. Blocks until then (at most
   * 30 s). Call it after the last request has ended and before the store closes.
   */
  @Override
  public void close() {
    closed = true;
    LockSupport.unpark(writer);
    try {
      writer.join(30_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (writer.isAlive()) {
      log.error("the usage writer did not finish within 30 s; {} queued usage events may be lost", queued.get());
      return;
    }
    // An event whose record() raced with closing may have been queued after the writer's last look.
    List<UsageEvent> late = new ArrayList<>();
    while (writeBatch(late) > 0) {
      // until nothing is left
    }
  }
}
