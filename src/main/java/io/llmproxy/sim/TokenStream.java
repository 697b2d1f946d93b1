package io.llmproxy.sim;

import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerResponse;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Streams one response's SSE events on the connection's event loop: nothing (or, with early
 * headers, the head and the role chunk) until the ttft, then the role chunk and the first token,
 * then a token per itl, then usage and {@code [DONE]} right after the last token. Each event is its
 * own write (flushed at once), but {@code [DONE]}, the last, goes with {@code end}. A full write
 * queue holds the next token until it drains. A client disconnect stops the stream (and cancels
 * its Vert.x timer, if it waits long enough to have one).
 */
final class TokenStream extends TickClock.Step {

  static final CharSequence EVENT_STREAM =
      HttpHeaders.createOptimized("text/event-stream; charset=utf-8");

  private final Vertx vertx;
  private final TickClock clock;
  private final SimState state;
  private final Profile profile;
  private final SimExchange exchange;
  private final HttpServerResponse response;
  private final StreamEvents events;
  private final int tokens;
  private final Handler<Void> onDrain = this::drained;

  private int next;
  /**
   * When the next token is due. Each token is due one itl after the previous one was due, not
   * after it was sent, so that a busy event loop makes tokens late but not the stream slower.
   */
  private long dueNanos;
  private boolean opened;
  private boolean stopped;
  private long timerId = -1;

  TokenStream(Vertx vertx, TickClock clock, SimState state, Profile profile, SimExchange exchange,
      HttpServerResponse response, StreamEvents events, int tokens) {
    this.vertx = vertx;
    this.clock = clock;
    this.state = state;
    this.profile = profile;
    this.exchange = exchange;
    this.response = response;
    this.events = events;
    this.tokens = tokens;
  }

  void start(long ttftNanos) {
    exchange.expectChunks(tokens + 3);
    exchange.onDisconnect(this::stop);
    response.setChunked(true).putHeader(HttpHeaders.CONTENT_TYPE, EVENT_STREAM);
    if (profile.options.earlyHeaders()) {
      open();
    }
    dueNanos = System.nanoTime() + ttftNanos;
    long ms = SimState.millis(ttftNanos);
    if (ms > 0) {
      timerId = clock.schedule(this, ms);
    } else {
      pump();
    }
  }

  @Override
  void fire() {
    timerId = -1;
    pump();
  }

  private void drained(Void v) {
    response.drainHandler(null);
    // The time spent waiting for the client is not made up for.
    dueNanos = Math.max(dueNanos, System.nanoTime());
    pump();
  }

  private void pump() {
    ThreadLocalRandom random = ThreadLocalRandom.current();
    while (!stopped) {
      if (!opened) {
        open();
      } else if (response.writeQueueFull()) {
        response.drainHandler(onDrain);
        return;
      }
      boolean last = next == tokens - 1;
      write(events.token(next++, last));
      if (last) {
        finish();
        return;
      }
      dueNanos += profile.itlNanos(random);
      long ms = SimState.millis(dueNanos - System.nanoTime());
      if (ms > 0) {
        timerId = clock.schedule(this, ms);
        return;
      }
    }
  }

  /** The status line and headers, with the role chunk if this kind of stream has one. */
  private void open() {
    opened = true;
    exchange.status(200);
    Buffer opening = events.opening();
    if (opening == null) {
      response.writeHead();
    } else {
      write(opening);
    }
  }

  /** Usage and {@code [DONE]}, the latter with the end of the response (one flush less). */
  private void finish() {
    stopped = true;
    Buffer usage = events.usage();
    if (usage != null) {
      write(usage);
    }
    Buffer done = events.done();
    if (done != null) {
      exchange.chunkSent(System.nanoTime());
    }
    state.end(response, exchange, done);
  }

  private void write(Buffer event) {
    exchange.chunkSent(System.nanoTime());
    response.write(event);
  }

  private void stop() {
    stopped = true;
    if (timerId >= 0) {
      vertx.cancelTimer(timerId);
      timerId = -1;
    }
  }
}
