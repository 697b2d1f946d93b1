package io.llmproxy.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayDeque;

/**
 * One HTTP/1.1 connection to a backend, on the event loop of the client connections it serves: the
 * last handler of a Netty pipeline behind an {@link UpstreamResponseDecoder} and Netty's request
 * encoder. It carries one exchange at a time and hands what the backend answers to that exchange's
 * {@link Listener}, as it arrives.
 *
 * <p>It carries another only when nothing about the last one is in doubt: the response was read to
 * its end, the request was written to its end (a backend may answer early, say 413, and stop reading
 * the body), nothing arrived past the response's end (bytes there would be read as the next
 * response), the backend did not answer 101 (nothing asked it to switch protocols), and nobody began
 * closing it.
 *
 * <p>Netty directly, not Vert.x's HTTP client: the gateway owns the pool ({@link UpstreamClient}),
 * the request's headers ({@link Dispatch#writeHeaders}) and the cancellation (a close), so Vert.x's
 * client added a request object, a response object, their futures and queues, and a header map
 * copied twice, to every proxied request.
 *
 * <p>What one read of the socket brings is handed on as one chunk, when the read completes: a
 * backend's events that were waiting together (the loop was busy, or the backend wrote them at once)
 * then leave in one write to the client, not one write each, so a loop that fell behind catches up
 * instead of paying a system call per event. Nothing waits for a later read.
 *
 * <p>The chunk is pooled memory, never a buffer on the heap. When the read brought one piece of body
 * that fills most of the read's buffer (a body, or events that arrived together), it is the decoder's
 * slice of that buffer itself, so the bytes go from the backend's socket to the client's without a
 * copy. A small piece (one event in a larger buffer) is copied once, to its own size, so that a slow
 * client's queue does not hold whole read buffers; several pieces of one read are gathered into one.
 *
 * <p>Reading stops when the listener pauses ({@link #pause}, the client is slow): the socket's
 * autoRead goes off, so the backend meets TCP backpressure, and the messages already decoded from the
 * last read wait here until {@link #resume}.
 */
public final class UpstreamConnection extends ChannelInboundHandlerAdapter {

  /** What one exchange hears from the backend. Exactly one of {@link #onEnd} and {@link #onError} ends it. */
  public interface Listener {
    /** The response's status line and headers (an informational 1xx is skipped). */
    void onHead(HttpResponse head);

    /**
     * A piece of the body: what one read brought. The chunk's memory is pooled and is given back when
     * this call returns: a listener that keeps it past the call (a write to a socket that completes
     * later) retains its {@code ByteBuf} and releases it when done, or copies it.
     */
    void onContent(Buffer chunk);

    /**
     * The response is complete; {@code reusable} when the connection may carry another exchange
     * (HTTP/1.1 keep-alive, and the backend did not say {@code Connection: close}).
     */
    void onEnd(boolean reusable);

    /** The connection failed or closed before the response was complete. */
    void onError(Throwable cause);
  }

  private final Channel channel;
  private final UpstreamResponseDecoder decoder;
  private Listener listener;
  private HttpResponse head;
  /** Inside an informational (1xx) response, whose head and empty body are not passed on. */
  private boolean informational;
  private boolean paused;
  /** Messages decoded while paused, in order. */
  private ArrayDeque<Object> held;
  /**
   * The body this read brought so far, handed on when the read completes; null when none. A slice of
   * the read's pooled buffer, or a pooled buffer the pieces were copied into ({@link #gathered}).
   */
  private ByteBuf pending;
  /** {@link #pending} is a pooled buffer of this connection's own, the pieces copied into it. */
  private boolean gathered;
  /** Closed, or closing: set when the close starts, not when the socket is gone. */
  private boolean closed;
  /** The socket closed while messages decoded before it were held by a pause: reported on resume. */
  private boolean closedWhilePaused;
  private Runnable closeHandler;

  UpstreamConnection(Channel channel, UpstreamResponseDecoder decoder) {
    this.channel = channel;
    this.decoder = decoder;
  }

  Channel channel() {
    return channel;
  }

  boolean isClosed() {
    return closed;
  }

  /**
   * Whether it may carry a new exchange now: open, and no bytes are waiting in it that no response
   * accounts for (a backend that sent more than its response, after the exchange ended).
   */
  boolean reusable() {
    // isActive: a body that ends at the backend's close is complete (the decoder ends it from its
    // channelInactive) before this handler hears of the close
    return !closed && channel.isActive() && !decoder.hasUndecodedBytes();
  }

  /** Runs once, when the connection closes (either side). */
  void closeHandler(Runnable onClose) {
    this.closeHandler = onClose;
  }

  /**
   * Sends a request whose head and body go out in one write; {@code listener} hears the response.
   * The body's buffer is not released (a held request body is replayed on a retry).
   */
  public void send(HttpRequest request, ByteBuf body, Listener listener) {
    if (closed) {
      listener.onError(new ClosedChannelException());
      return;
    }
    this.listener = listener;
    head = null;
    informational = false;
    decoder.expect(request.method());
    DefaultFullHttpRequest full = new DefaultFullHttpRequest(request.protocolVersion(), request.method(),
        request.uri(), body, request.headers(), io.netty.handler.codec.http.EmptyHttpHeaders.INSTANCE);
    channel.writeAndFlush(full, channel.voidPromise());
  }

  /** Stops reading from the backend until {@link #resume}. */
  void pause() {
    if (!paused) {
      paused = true;
      channel.config().setAutoRead(false);
    }
  }

  /**
   * Reads again: first what was decoded while paused, then from the socket. A close that came while
   * paused is reported after what was decoded before it, or not at all if that ended the response.
   */
  void resume() {
    if (!paused) {
      return;
    }
    paused = false;
    Object msg;
    while (held != null && !paused && (msg = held.poll()) != null) {
      deliver(msg);
    }
    flushPending();
    if (!paused && closedWhilePaused) {
      closedWhilePaused = false;
      reportClose();
    } else if (!paused && !closed) {
      channel.config().setAutoRead(true);
    }
  }

  /**
   * Given back to the pool: a pause ends with the exchange that asked for it, and an idle connection
   * reads. An exchange can pause as it ends (its last chunk, or a hedged answer committed from
   * {@link Listener#onEnd}, fills the client's write queue); kept, that pause left the next exchange
   * on the connection never hearing its answer.
   */
  void idle() {
    if (paused) {
      paused = false;
      channel.config().setAutoRead(true);
    }
  }

  /**
   * Closes the connection (the backend sees the disconnect); an exchange in progress hears nothing
   * more. Completes when the socket is closed.
   */
  ChannelFuture close() {
    listener = null;
    dropUnsent();
    closed = true;
    return channel.close();
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    flushPending();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (listener == null) {
      // Nothing was asked: a response without a request (or to one cut off) ends the connection.
      ReferenceCountUtil.release(msg);
      if (!closed) {
        closed = true; // from now on, not leased again (the socket closes later)
        channel.close();
      }
      return;
    }
    if (paused) {
      if (held == null) {
        held = new ArrayDeque<>(4);
      }
      held.add(msg);
      return;
    }
    deliver(msg);
  }

  private void deliver(Object msg) {
    Listener l = listener;
    if (l == null) {
      ReferenceCountUtil.release(msg);
      return;
    }
    if (msg instanceof HttpResponse r) {
      if (r.decoderResult().isFailure()) {
        ReferenceCountUtil.release(msg);
        fail(r.decoderResult().cause());
        return;
      }
      int code = r.status().code();
      if (code == HttpResponseStatus.SWITCHING_PROTOCOLS.code()) {
        // Nothing asked for it (the client's Upgrade is hop-by-hop and not sent): what follows is
        // not HTTP and would never end.
        ReferenceCountUtil.release(msg);
        fail(new IOException("the backend switched protocols (101) though no upgrade was asked for"));
        return;
      }
      informational = code >= 100 && code < 200;
      if (!informational) {
        head = r;
        l.onHead(r);
      }
    }
    if (msg instanceof HttpContent c) {
      if (c.decoderResult().isFailure()) {
        c.release();
        fail(c.decoderResult().cause());
        return;
      }
      ByteBuf content = c.content();
      boolean last = msg instanceof LastHttpContent;
      if (informational) {
        c.release();
        informational = !last;
        return;
      }
      if (content.isReadable()) {
        if (pending == null && fillsItsBuffer(content)) {
          pending = content.retain(); // the decoder's slice of the read's buffer, not a copy
        } else {
          gather(content);
        }
      }
      c.release();
      if (last) {
        if (!flushPending()) {
          return; // the exchange was ended from inside onContent (cancelled)
        }
        boolean reusable = head != null && head.protocolVersion() == HttpVersion.HTTP_1_1 && HttpUtil.isKeepAlive(head)
            && requestWritten() && (held == null || held.isEmpty()) && reusable();
        listener = null;
        head = null;
        l.onEnd(reusable);
      }
    }
  }

  /**
   * Whether a piece fills at least half of the read's buffer, and goes on as a slice of it, not a
   * copy. A chunk waiting in a slow client's write queue holds the whole buffer it was sliced from:
   * with slices of every size, 500 clients that read nothing, on a stream of small events, held 88 MiB
   * of direct memory against 40 with copies.
   */
  private static boolean fillsItsBuffer(ByteBuf content) {
    ByteBuf whole = content.unwrap();
    return whole == null || 2L * content.readableBytes() >= whole.capacity();
  }

  /**
   * Copies a piece into a pooled buffer of the connection's own, sized for the rest of the read (grown
   * piece by piece, it doubled each time): a small piece (one event in a larger buffer), or a further
   * piece of the same read (a loop that fell behind, or a body split by the decoder), so that the
   * read's pieces still leave in one write.
   */
  private void gather(ByteBuf content) {
    if (!gathered) {
      ByteBuf first = pending;
      int firstBytes = first == null ? 0 : first.readableBytes();
      pending = channel.alloc().directBuffer(firstBytes + content.readableBytes() + decoder.undecodedBytes());
      if (first != null) {
        pending.writeBytes(first);
        first.release();
      }
      gathered = true;
    }
    pending.writeBytes(content);
  }

  /**
   * Hands the body gathered from the last read to the listener. False when the exchange ended from
   * inside {@link Listener#onContent} (it was cancelled, or a new one is already under way).
   */
  private boolean flushPending() {
    ByteBuf p = pending;
    if (p == null) {
      return true;
    }
    pending = null;
    gathered = false;
    Listener l = listener;
    try {
      if (l == null) {
        return true;
      }
      l.onContent(BufferInternal.buffer(p));
      return listener == l;
    } finally {
      p.release(); // a listener that keeps the chunk retained it
    }
  }

  /**
   * Whether the request went out to its end. A response normally comes after that; one that ends
   * before (an early answer while the body is still queued) leaves the rest of the body in the
   * connection, ahead of any next request.
   */
  private boolean requestWritten() {
    ChannelOutboundBuffer out = channel.unsafe().outboundBuffer();
    return out == null || out.isEmpty();
  }

  private void fail(Throwable cause) {
    flushPending(); // what arrived before the failure goes first
    Listener l = listener;
    listener = null;
    dropUnsent();
    closed = true;
    channel.close();
    if (l != null) {
      l.onError(cause);
    }
  }

  /** Drops what was read but not handed on. */
  private void dropUnsent() {
    if (pending != null) {
      pending.release();
      pending = null;
      gathered = false;
    }
    if (held != null) {
      Object m;
      while ((m = held.poll()) != null) {
        ReferenceCountUtil.release(m);
      }
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    closed = true;
    if (paused && listener != null && held != null && !held.isEmpty()) {
      // The backend sent more (perhaps the rest of the response, as a body that ends at the close
      // does) while the client was slow: it goes on when the client drains, then the close counts.
      closedWhilePaused = true;
    } else {
      flushPending(); // what arrived before the close was sent; the cut is reported after it
      reportClose();
    }
    if (closeHandler != null) {
      Runnable h = closeHandler;
      closeHandler = null;
      h.run();
    }
  }

  /** The connection closed: an exchange still under way hears of it, and what was not handed on goes. */
  private void reportClose() {
    Listener l = listener;
    listener = null;
    dropUnsent();
    if (l != null) {
      l.onError(new ClosedChannelException());
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (!channel.isActive() && listener == null) {
      // Still connecting (epoll can report a read on a socket whose connect is pending, which fails
      // with NotYetConnectedException): the connect's own outcome decides, not this.
      return;
    }
    fail(cause instanceof IOException ? cause : new IOException(cause.getMessage(), cause));
  }
}
