package io.llmproxy.api;

import io.netty.channel.Channel;
import io.netty.channel.ChannelOutboundBuffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;

/**
 * Closes an HTTP/1.x client connection at once, dropping what is still queued for the client.
 * Vert.x's own close (and a response's reset) on HTTP/1.x waits behind the queued bytes: a client
 * that reads none of them would keep them, and the pooled buffers its response's chunks hold, for
 * as long as it stays connected. An HTTP/2 connection carries other streams and is never closed
 * here (a stream is reset instead).
 */
public final class Disconnect {
  private Disconnect() {}

  /** Closes {@code connection} now; false when it is not an HTTP/1.x connection of Vert.x's (nothing done). */
  public static boolean now(HttpConnection connection) {
    Channel ch = http1Channel(connection);
    if (ch == null) {
      return false;
    }
    cut(ch);
    return true;
  }

  /**
   * Closes {@code connection} now when bytes are still queued for the client (it is not reading);
   * false when nothing is queued or it is not HTTP/1.x, and the caller's graceful close will do.
   */
  public static boolean ifQueued(HttpConnection connection) {
    Channel ch = http1Channel(connection);
    if (ch == null) {
      return false;
    }
    ChannelOutboundBuffer out = ch.unsafe().outboundBuffer();
    if (ch.isWritable() && (out == null || out.totalPendingWriteBytes() == 0)) {
      return false;
    }
    cut(ch);
    return true;
  }

  /**
   * From the head of the pipeline, past Vert.x's handlers: a close that passes through them waits
   * for the queued writes to flush.
   */
  private static void cut(Channel ch) {
    ch.pipeline().firstContext().close();
  }

  private static Channel http1Channel(HttpConnection connection) {
    ConnectionBase base = HttpVersionGate.http1(connection);
    return base == null ? null : base.channel();
  }
}
