package io.llmproxy.api;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;

/**
 * Answering a request whose body is not read (too large, refused) before that body arrived.
 *
 * <ul>
 *   <li>HTTP/1.x: the unread rest would make the connection unusable, so the answer says
 *       {@code Connection: close} and the connection closes after it, the way nginx's lingering
 *       close does: what the client is still sending is read and dropped for up to a while, so that
 *       it reads the answer instead of a connection reset.
 *   <li>HTTP/2: the request is one stream of a connection other requests share, so only the stream
 *       ends. The answer is complete, and a stream the client is still sending on is reset with
 *       {@code NO_ERROR}, which asks it to stop sending (RFC 9113 §8.1). A connection-specific header
 *       such as {@code Connection} is not allowed there (RFC 9113 §8.2.2).
 * </ul>
 */
public final class LingeringClose {
  private LingeringClose() {}

  /** Sends the answer ({@code answer} writes and ends the response), then ends what is left of the request as above. */
  public static void answer(Vertx vertx, HttpServerRequest req, long lingerMs, Runnable answer) {
    if (req.version() == HttpVersion.HTTP_2) {
      req.handler(ignored -> { });
      answer.run();
      if (!req.isEnded()) {
        req.response().reset(0);
      }
      return;
    }
    req.response().putHeader(HttpHeaders.CONNECTION, "close");
    answer.run();
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
