package io.llmproxy.api;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServerRequest;

/**
 * Closing a connection after answering a request whose body was not read (too large, refused),
 * the way nginx's lingering close does: what the client is still sending is read and dropped for up
 * to a while, so that it reads the answer instead of a connection reset, then the connection closes.
 * The answer must carry {@code Connection: close}.
 */
public final class LingeringClose {
  private LingeringClose() {}

  /** After the answer went out: drops the rest of the body, then closes (at its end, or after {@code lingerMs}). */
  public static void afterAnswer(Vertx vertx, HttpServerRequest req, long lingerMs) {
    HttpConnection connection = req.connection();
    long timer = vertx.setTimer(lingerMs, id -> connection.close());
    req.handler(ignored -> { });
    req.exceptionHandler(t -> connection.close());
    req.endHandler(v -> {
      vertx.cancelTimer(timer);
      connection.close();
    });
  }
}
