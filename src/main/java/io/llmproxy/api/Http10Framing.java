package io.llmproxy.api;

import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;

/**
 * HTTP/1.0 has no chunked transfer coding: a response whose length is unknown when its head goes out
 * (a stream, or a backend's body framed by its close) can end only by closing the connection (RFC
 * 9112 §6.3). Vert.x ignores {@code setChunked} on HTTP/1.0 and, to a client that asked for
 * keep-alive, answers {@code Connection: keep-alive} and keeps the connection: the client then waits
 * for an end that comes only at the keep-alive timeout. Such a response says {@code Connection:
 * close} instead, and the connection closes once it is written. A response of known length keeps
 * the connection as asked.
 */
public final class Http10Framing {
  private Http10Framing() {}

  /** Watches the response to {@code req} when it is an HTTP/1.0 request asking for keep-alive; else does nothing. */
  public static void install(HttpServerRequest req) {
    if (req.version() != HttpVersion.HTTP_1_0
        || !req.headers().contains(HttpHeaders.CONNECTION, HttpHeaders.KEEP_ALIVE, true)) {
      return;
    }
    HttpServerResponse resp = req.response();
    boolean[] closeAtEnd = {false};
    // Runs as the head is written, after Vert.x has set its Connection header and the Content-Length
    // of a body given whole to end().
    resp.headersEndHandler(v -> {
      if (unframed(req.method(), resp)) {
        resp.headers().set(HttpHeaders.CONNECTION, HttpHeaders.CLOSE);
        closeAtEnd[0] = true;
      }
    });
    resp.bodyEndHandler(v -> {
      if (closeAtEnd[0]) {
        req.connection().close(); // behind the response's last bytes
      }
    });
  }

  /** A response with a body and no Content-Length. */
  private static boolean unframed(HttpMethod method, HttpServerResponse resp) {
    int status = resp.getStatusCode();
    return method != HttpMethod.HEAD && status >= 200 && status != 204 && status != 304
        && !resp.headers().contains(HttpHeaders.CONTENT_LENGTH);
  }
}
