package io.llmproxy.server;

import io.llmproxy.api.Disconnect;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServerRequest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Closes the client connections of one event loop that have had no request in progress for
 * {@code limits.client_keep_alive_timeout}, as nginx's {@code keepalive_timeout} does. Time spent
 * inside a request never counts, so a long prefill with no byte moving keeps its connection. On
 * HTTP/2 a request is a stream, and the connection is idle when none is in progress.
 *
 * <p>A connection is known from its first request on: one that never completes a request head is
 * not closed by this (Vert.x reports a connection to the server only once it has read a request).
 *
 * <p>Everything runs on the loop's thread, without locks. The cost on the request path is one map
 * lookup and one end handler; the check runs once a second.
 */
final class ClientKeepAlive {
  static final long SWEEP_MS = 1_000;

  private final Vertx vertx;
  private final long timeoutNanos;
  private final Map<HttpConnection, Conn> connections = new HashMap<>();
  private final long sweeper;

  /** A connection's requests in progress, and since when it has had none. */
  private static final class Conn {
    int inProgress;
    long idleSinceNanos;
  }

  /** Created on the loop's own context (the verticle's start), where the check then runs. */
  ClientKeepAlive(Vertx vertx, long timeoutNanos) {
    this.vertx = vertx;
    this.timeoutNanos = timeoutNanos;
    this.sweeper = vertx.setPeriodic(SWEEP_MS, id -> closeIdle());
  }

  /** A request begins on its connection; it ends when its response does (or the connection closes). */
  void requestStarted(HttpServerRequest req) {
    HttpConnection connection = req.connection();
    Conn c = connections.get(connection);
    if (c == null) {
      c = new Conn();
      connections.put(connection, c);
      connection.closeHandler(v -> connections.remove(connection));
    }
    c.inProgress++;
    Conn conn = c;
    req.response().endHandler(v -> {
      if (--conn.inProgress == 0) {
        conn.idleSinceNanos = System.nanoTime();
      }
    });
  }

  private void closeIdle() {
    long now = System.nanoTime();
    List<HttpConnection> expired = new ArrayList<>();
    connections.forEach((connection, c) -> {
      if (c.inProgress == 0 && now - c.idleSinceNanos >= timeoutNanos) {
        expired.add(connection);
      }
    });
    for (HttpConnection connection : expired) {
      connections.remove(connection);
      // A response still queued this long after it ended is one the client does not read: a
      // graceful close would wait behind it for as long as the client stays connected.
      if (!Disconnect.ifQueued(connection)) {
        connection.close();
      }
    }
  }

  void stop() {
    vertx.cancelTimer(sweeper);
  }
}
