package io.llmproxy.proxy;

import io.llmproxy.api.OpenAiError;
import io.llmproxy.routing.Backend;
import io.vertx.core.buffer.Buffer;
import io.netty.handler.codec.http.HttpResponse;

/**
 * The proxy-to-client leg, as a {@link Dispatch} drives it. Exactly one of {@link #end},
 * {@link #fail} and {@link #abort} is called, once, and that ends the exchange.
 */
public interface Downstream {

  /**
   * The winner is known: send its status and headers, with the gateway's own headers added.
   *
   * @param hedged more than one attempt was in flight at once
   */
  void commit(Backend backend, int attempts, boolean hedged, HttpResponse response);

  /**
   * Writes a chunk of the winner's body.
   *
   * @return false when the client's write queue is full; the dispatch then pauses the upstream until
   *     the drain handler runs
   */
  boolean write(Buffer chunk);

  /** Called each time the client's write queue drains after {@link #write} returned false. */
  void drainHandler(Runnable onDrain);

  /** The winner's body is complete. */
  void end();

  /** Nothing was sent yet: answer with the gateway's own error. */
  void fail(OpenAiError error, String message);

  /**
   * The upstream broke after the commit: end an SSE stream with one error event, or otherwise cut
   * the connection so the client sees the truncation.
   */
  void abort(OpenAiError error, String message);
}
