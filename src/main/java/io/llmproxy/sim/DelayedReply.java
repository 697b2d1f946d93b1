package io.llmproxy.sim;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;

/** A whole JSON response sent after a delay, unless the client leaves first. */
final class DelayedReply extends TickClock.Step {

  private final Vertx vertx;
  private final TickClock clock;
  private final SimState state;
  private final SimExchange exchange;
  private final HttpServerResponse response;
  private final Buffer body;
  private boolean stopped;
  private long timerId = -1;

  DelayedReply(Vertx vertx, TickClock clock, SimState state, SimExchange exchange, HttpServerResponse response,
      Buffer body) {
    this.vertx = vertx;
    this.clock = clock;
    this.state = state;
    this.exchange = exchange;
    this.response = response;
    this.body = body;
  }

  void start(long delayNanos) {
    exchange.onDisconnect(this::stop);
    long ms = SimState.millis(delayNanos);
    if (ms > 0) {
      timerId = clock.schedule(this, ms);
    } else {
      send();
    }
  }

  @Override
  void fire() {
    timerId = -1;
    send();
  }

  private void send() {
    if (!stopped) {
      stopped = true;
      state.respond(response, exchange, 200, body);
    }
  }

  private void stop() {
    stopped = true;
    if (timerId >= 0) {
      vertx.cancelTimer(timerId);
      timerId = -1;
    }
  }
}
