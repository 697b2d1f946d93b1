package io.llmproxy.server;

import java.io.IOException;
import java.io.OutputStream;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BiConsumer;

/**
 * Writes access-log lines in batches: the thread that ends a request (its event loop) formats the
 * line straight to UTF-8 bytes ({@link LogLine}) into a buffer of its own, and one writer thread
 * takes every thread's buffer each {@link #PERIOD_MS} ms and writes them out. A per-line logging
 * appender costs a thread wake-up and a system call per request, which at thousands of requests a
 * second was a quarter of the gateway's CPU. Formatting where the request ended reads its strings
 * while they are still in that core's cache; the writer thread formatting them read each from the
 * other core's. When a thread has {@link #MAX_PENDING_BYTES} waiting (the output is stuck), its new
 * lines are dropped and counted rather than stalling requests.
 *
 * <p>Each thread's lines keep their order; lines of different threads interleave batch by batch, so
 * within {@link #PERIOD_MS} ms they may be out of time order.
 */
final class AccessLogWriter implements AutoCloseable {
  static final long PERIOD_MS = 20;
  static final int MAX_PENDING_BYTES = 8 * 1024 * 1024;
  /** Threads with a buffer of their own; any further thread (event loops are few) shares one. */
  private static final int MAX_BUFFERS = 64;
  /** A buffer is cut back to this after a batch that grew it beyond (a burst, or stuck output). */
  private static final int KEPT_CAPACITY = 256 * 1024;

  private final OutputStream out;
  private final BiConsumer<LogLine, AccessLog.Entry> format;
  private final List<Buffer> buffers = new CopyOnWriteArrayList<>();
  private final Buffer shared = new Buffer();
  private final ThreadLocal<Buffer> mine = ThreadLocal.withInitial(this::newBuffer);
  private final LongAdder dropped = new LongAdder();
  private final Thread thread;
  private volatile boolean closed;

  /** One thread's lines: {@code pending} is filled under the buffer's lock; {@code spare} is the writer's. */
  private static final class Buffer {
    LogLine pending = new LogLine(16 * 1024);
    int pendingLines;
    LogLine spare = new LogLine(16 * 1024);
  }

  AccessLogWriter(OutputStream out, BiConsumer<LogLine, AccessLog.Entry> format) {
    this.out = out;
    this.format = format;
    buffers.add(shared);
    this.thread = new Thread(this::run, "llmproxy-access-log");
    thread.setDaemon(true);
    thread.start();
  }

  private Buffer newBuffer() {
    synchronized (buffers) {
      if (buffers.size() >= MAX_BUFFERS) {
        return shared;
      }
      Buffer b = new Buffer();
      buffers.add(b);
      return b;
    }
  }

  /** Formats one line into this thread's buffer. Never blocks on the output. */
  void append(AccessLog.Entry entry) {
    Buffer b = mine.get();
    synchronized (b) {
      // checked under the lock: the writer's last pass takes each lock after closed is set, so a
      // line is either in that pass or counted here
      if (closed || b.pending.length() >= MAX_PENDING_BYTES) {
        dropped.increment();
        return;
      }
      format.accept(b.pending, entry);
      b.pending.ascii('\n');
      b.pendingLines++;
    }
  }

  long dropped() {
    return dropped.sum();
  }

  private void run() {
    while (true) {
      boolean stopping = closed;
      drain();
      if (stopping) {
        return;
      }
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(PERIOD_MS));
    }
  }

  /** Takes each thread's lines and writes them, one write per thread that had any, one flush. */
  private void drain() {
    boolean wrote = false;
    for (Buffer b : buffers) {
      LogLine lines;
      int count;
      synchronized (b) {
        lines = b.pending;
        count = b.pendingLines;
        if (count == 0) {
          continue;
        }
        b.pending = b.spare;
        b.pendingLines = 0;
      }
      try {
        // Whole lines, under the stream's own lock, so they never interleave with other output on
        // the same stream.
        synchronized (out) {
          lines.writeTo(out);
        }
        wrote = true;
      } catch (IOException e) {
        dropped.add(count);
      }
      lines.clear();
      b.spare = lines.capacity() > KEPT_CAPACITY ? new LogLine(16 * 1024) : lines;
    }
    if (wrote) {
      try {
        synchronized (out) {
          out.flush();
        }
      } catch (IOException e) {
        // the lines were handed to the stream; a write that failed was counted above
      }
    }
  }

  /** Writes what is waiting and stops the writer thread. */
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
