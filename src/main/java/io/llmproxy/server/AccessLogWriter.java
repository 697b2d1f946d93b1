package io.llmproxy.server;

import java.io.IOException;
import java.io.OutputStream;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BiConsumer;

/**
 * Formats and writes access-log lines off the event loops, in batches: event loops only enqueue an
 * entry (no lock, no wake-up, no formatting), and one writer thread drains the queue every
 * {@link #PERIOD_MS} ms, formatting straight to UTF-8 bytes ({@link LogLine}), into a single write. A per-line logging appender costs a thread wake-up and a system call per request,
 * which at thousands of requests a second was a quarter of the gateway's CPU. When the queue holds
 * {@link #MAX_QUEUED} lines (the output is stuck), new lines are dropped and counted rather than
 * stalling requests.
 */
final class AccessLogWriter implements AutoCloseable {
  static final long PERIOD_MS = 20;
  static final int MAX_QUEUED = 100_000;

  private final OutputStream out;
  private final BiConsumer<LogLine, AccessLog.Entry> format;
  private final ConcurrentLinkedQueue<AccessLog.Entry> queue = new ConcurrentLinkedQueue<>();
  private final AtomicInteger queued = new AtomicInteger();
  private final LongAdder dropped = new LongAdder();
  private final Thread thread;
  private volatile boolean closed;

  AccessLogWriter(OutputStream out, BiConsumer<LogLine, AccessLog.Entry> format) {
    this.out = out;
    this.format = format;
    this.thread = new Thread(this::run, "llmproxy-access-log");
    thread.setDaemon(true);
    thread.start();
  }

  /** Queues one entry. Never blocks. */
  void append(AccessLog.Entry line) {
    if (closed || queued.incrementAndGet() > MAX_QUEUED) {
      queued.decrementAndGet();
      dropped.increment();
      return;
    }
    queue.add(line);
  }

  long dropped() {
    return dropped.sum();
  }

  private void run() {
    LogLine batch = new LogLine(80 * 1024);
    while (true) {
      boolean stopping = closed;
      drain(batch);
      if (stopping) {
        return;
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(PERIOD_MS));
    }
  }

  private void drain(LogLine batch) {
    AccessLog.Entry entry;
    while ((entry = queue.poll()) != null) {
      queued.decrementAndGet();
      format.accept(batch, entry);
      batch.ascii('\n');
      if (batch.length() >= 64 * 1024) {
        write(batch);
      }
    }
    write(batch);
  }

  /** Writes the batch's bytes as they are (UTF-8 already) and empties it. */
  private void write(LogLine batch) {
    if (batch.length() == 0) {
      return;
    }
    try {
      // One write of whole lines, under the stream's own lock, so lines never interleave with
      // other output on the same stream.
      synchronized (out) {
        batch.writeTo(out);
        out.flush();
      }
    } catch (IOException e) {
      dropped.increment();
    } finally {
      batch.clear();
    }
  }

  /** Writes what is queued and stops the writer thread. */
  @Override
  public void close() {
    closed = true;
    LockSupport.unpark(thread);
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
