package io.llmproxy.proxy;

import static java.util.Objects.requireNonNull;

import io.llmproxy.api.Throwables;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.routing.Backend;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelException;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ConnectTimeoutException;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpRequestEncoder;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.util.concurrent.PromiseCombiner;
import io.netty.util.concurrent.ScheduledFuture;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import java.io.File;
import java.io.IOException;
import java.nio.channels.ClosedChannelException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.net.ssl.SSLException;

/**
 * The keep-alive HTTP/1.1 connections to the backends for one event loop. Each event loop has its
 * own, so the upstream connection lives on the same thread as the client connection and a forwarded
 * chunk never changes thread; everything here runs on that loop, without locks. The connections are
 * Netty channels on that loop ({@link UpstreamConnection}); https backends are verified against the
 * JDK's trusted certificates, by host name.
 *
 * <p>Idle connections are a stack per backend, most recently used on top (it is the warmest, and
 * the others expire first): taking and giving back are O(1) (Vert.x's pool, used before, walked
 * every pooled connection on each request: after a burst of thousands of streams, throughput
 * halved until they timed out). A connection is given back only after a complete exchange; one
 * whose request was reset or cut is closed, never reused. Connections per backend are capped (the
 * cap split across the event loops); requests beyond it wait, for at most the connect timeout.
 * Out of sockets (no file descriptor left), the longest idle connections are closed to make room
 * and the connect is tried once more; if that fails too, the lease fails with a
 * {@link NoSocketException}, which the backend's health does not count.
 */
public final class UpstreamClient {
  /** How often idle connections past the keep-alive timeout are closed. */
  static final long SWEEP_MS = 1_000;
  /**
   * Idle connections closed, the longest idle first, when no socket could be opened (the process
   * is out of file descriptors): the connect is then tried once more.
   */
  static final int FREED_WHEN_OUT_OF_SOCKETS = 64;

  private final Vertx vertx;
  private final EventLoop loop;
  private final Bootstrap bootstrap;
  private final SslContext tls;
  private final int maxPerBackend;
  private final long keepAliveNanos;
  private final int maxWaiters;
  /** By the backend's state, which its generations share across config reloads. */
  private final Map<Backend.State, Route> routes = new HashMap<>();
  private long sweeper = -1;
  private boolean closed;

  /**
   * How much one event loop's pool may hold, and whom it trusts.
   *
   * @param maxPerBackend   connections to one backend from this loop, at most
   * @param keepAliveNanos  an idle connection is closed after this long
   * @param maxWaiters      requests that may wait for a connection at the cap; -1 = no cap
   * @param trust           whom an https backend's certificate must chain to
   */
  public record Limits(int maxPerBackend, long keepAliveNanos, int maxWaiters, Trust trust) {}

  /** Whom an https backend's certificate must chain to. */
  public sealed interface Trust {
    /** The JDK's trusted authorities, and the certificate must name the URL's host. */
    Trust JDK = new Jdk();

    /** The JDK's trusted authorities ({@link #JDK}). */
    record Jdk() implements Trust {}

    /** Authorities in a PEM file instead of the JDK's (tests trust their own); still checked by host name. */
    record Certificates(File pem) implements Trust {
      public Certificates {
        requireNonNull(pem, "pem");
      }
    }

    /** Any certificate, for any name: only for a load generator pointed at a test endpoint. */
    record Any() implements Trust {}
  }

  /** The gateway's pool on {@code context}'s event loop (one of {@code eventLoops}): it must be used on that loop only. */
  public UpstreamClient(Context context, GatewayConfig config, int eventLoops) {
    this(context, limits(config, eventLoops, Trust.JDK));
  }

  /** The pool of the gateway's {@code upstream} settings, the cap split across {@code eventLoops}. */
  static Limits limits(GatewayConfig config, int eventLoops, Trust trust) {
    GatewayConfig.UpstreamConfig up = config.upstream();
    return new Limits((up.maxConnectionsPerBackend() + eventLoops - 1) / eventLoops,
        up.keepAliveTimeout().toNanos(), up.maxWaitQueue(), trust);
  }

  /** A pool on {@code context}'s event loop: it must be used on that loop only. */
  public UpstreamClient(Context context, Limits limits) {
    this.vertx = requireNonNull(context, "context").owner();
    this.tls = tls(limits.trust());
    this.maxPerBackend = Math.max(1, limits.maxPerBackend());
    this.keepAliveNanos = limits.keepAliveNanos();
    this.maxWaiters = limits.maxWaiters();
    VertxInternal vi = (VertxInternal) vertx;
    this.loop = ((ContextInternal) context).nettyEventLoop();
    this.bootstrap = new Bootstrap()
        .group(loop)
        .channelFactory(vi.transport().channelFactory(false))
        .resolver(vi.nameResolver().nettyAddressResolverGroup())
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.SO_KEEPALIVE, true);
  }

  /** TLS to https backends: by default their certificate must be trusted and name the host the URL names. */
  private static SslContext tls(Trust trust) {
    try {
      SslContextBuilder b = SslContextBuilder.forClient();
      switch (trust) {
        case Trust.Jdk jdk -> b.endpointIdentificationAlgorithm("HTTPS");
        case Trust.Certificates c -> b.endpointIdentificationAlgorithm("HTTPS").trustManager(c.pem());
        case Trust.Any any -> b.endpointIdentificationAlgorithm(null).trustManager(InsecureTrustManagerFactory.INSTANCE);
      }
      return b.build();
    } catch (SSLException e) {
      throw new IllegalStateException("TLS to https backends is not available: " + e.getMessage(), e);
    }
  }

  /**
   * The gateway could not open a socket to a backend (too many open files, say). The backend was
   * never asked, so this does not count against its health.
   */
  public static final class NoSocketException extends IOException {
    NoSocketException(Backend backend, Throwable cause) {
      super("no socket to " + backend.name() + " could be opened: " + Throwables.rootMessage(cause), cause);
    }
  }

  /**
   * The pool's own limits refused a lease: no connection became free within the wait
   * ({@code upstream.max_connections_per_backend}), or too many requests wait already
   * ({@code upstream.max_wait_queue}). The backend was never asked, so its health does not count this.
   */
  public static final class PoolLimitException extends IOException {
    private final boolean waitedOut;

    PoolLimitException(String message, boolean waitedOut) {
      super(message);
      this.waitedOut = waitedOut;
    }

    /** It waited for a connection to the end of the connect timeout (else the wait queue was full). */
    public boolean waitedOut() {
      return waitedOut;
    }
  }

  /**
   * Whether a lease failed for lack of time: the connect timeout (resolving, connecting, the TLS
   * handshake), or the wait for a connection at the pool's cap; else it was refused or unreachable.
   */
  public static boolean isTimeout(Throwable t) {
    return t instanceof TimeoutException || t instanceof ConnectTimeoutException
        || (t instanceof PoolLimitException p && p.waitedOut())
        || (t != null && t.getMessage() != null && t.getMessage().contains("timed out"));
  }

  /** A connection taken from the pool for one exchange; give it back with {@link #release}. */
  public final class Lease {
    private final Route route;
    private final Conn conn;
    private boolean released;

    private Lease(Route route, Conn conn) {
      this.route = route;
      this.conn = conn;
    }

    public UpstreamConnection connection() {
      return conn.connection;
    }

    /**
     * Ends the lease. {@code reusable}: the exchange completed (request sent, response read to its
     * end), so the connection may serve another; otherwise it is closed.
     */
    public void release(boolean reusable) {
      if (released) {
        return;
      }
      released = true;
      if (reusable && !closed && conn.connection.reusable()) {
        conn.connection.idle();
        route.giveBack(conn);
      } else {
        conn.close();
      }
    }
  }

  /**
   * A connection to {@code backend}: an idle one, a new one, or, at the cap, the next one given
   * back. Must be called on this client's event loop; fails on a connect error or timeout.
   */
  public Future<Lease> lease(Backend backend, long connectTimeoutMs) {
    if (closed) {
      return Future.failedFuture(new IllegalStateException("the upstream client is closed"));
    }
    if (sweeper < 0) {
      sweeper = vertx.setPeriodic(SWEEP_MS, id -> sweep()); // on this event loop, like the rest
    }
    Route route = routes.get(backend.state());
    if (route == null) {
      route = new Route(backend);
      if (backend.state().retired()) {
        // A request routed before a reload removed the backend (a retry, a hedge): served, but its
        // connection is closed when given back and the pool keeps nothing of the backend.
        route.retired = true;
      } else {
        routes.put(backend.state(), route);
      }
    }
    return route.lease(connectTimeoutMs);
  }

  /**
   * After a config reload: the pools of backends it retired ({@link Backend.State#retire}) close their
   * idle connections, and each connection still leased closes when it is given back. Requests
   * waiting for one of their connections still get one.
   */
  public void dropRetired() {
    for (var it = routes.entrySet().iterator(); it.hasNext(); ) {
      Route r = it.next().getValue();
      if (r.backend.state().retired()) {
        it.remove();
        r.retire();
      }
    }
  }

  /** Closes every connection; requests in flight are cut. */
  public Future<Void> close() {
    closed = true;
    if (sweeper >= 0) {
      vertx.cancelTimer(sweeper);
    }
    for (Route r : routes.values()) {
      r.closeAll();
    }
    return Future.succeededFuture();
  }

  /** Connections open to one backend from this event loop, idle or not (for tests). */
  int open(Backend backend) {
    Route r = routes.get(backend.state());
    return r == null ? 0 : r.open;
  }

  /** Idle connections to one backend (for tests). */
  int idle(Backend backend) {
    Route r = routes.get(backend.state());
    return r == null ? 0 : r.idle.size();
  }

  private void sweep() {
    long now = System.nanoTime();
    for (Route r : routes.values()) {
      r.expire(now);
    }
  }

  /**
   * Closes up to {@code max} idle connections to any backend, the longest idle first, and runs
   * {@code then} once their sockets are closed. False, and {@code then} is not run, when none is idle.
   */
  private boolean closeLongestIdle(int max, Runnable then) {
    List<Conn> oldest = new ArrayList<>();
    for (Route r : routes.values()) {
      for (Conn c : r.idle) {
        if (!c.closed) {
          oldest.add(c);
        }
      }
    }
    if (oldest.isEmpty()) {
      return false;
    }
    oldest.sort(Comparator.comparingLong(c -> c.idleSince));
    PromiseCombiner closing = new PromiseCombiner(loop);
    oldest.subList(0, Math.min(max, oldest.size())).forEach(c -> closing.add(c.close()));
    closing.finish(loop.<Void>newPromise().addListener(f -> then.run()));
    return true;
  }

  /** One connection, idle or leased. */
  private static final class Conn {
    final UpstreamConnection connection;
    boolean closed;
    long idleSince;

    Conn(UpstreamConnection connection) {
      this.connection = connection;
    }

    /** Closes it once; completes when its socket is closed. */
    ChannelFuture close() {
      if (closed) {
        return connection.channel().closeFuture();
      }
      closed = true;
      return connection.close();
    }
  }

  /** A request waiting for a connection at the cap. */
  private static final class Waiter {
    final Promise<Lease> promise = Promise.promise();
    final long connectTimeoutMs;
    long timer = -1;

    Waiter(long connectTimeoutMs) {
      this.connectTimeoutMs = connectTimeoutMs;
    }
  }

  /** The connections to one backend from this event loop. */
  private final class Route {
    private final Backend backend;
    /** Idle connections, the most recently given back first. */
    private final ArrayDeque<Conn> idle = new ArrayDeque<>();
    private final ArrayDeque<Waiter> waiters = new ArrayDeque<>();
    /** Connections open or being opened. */
    private int open;
    /** Its backend left the config: a connection given back is closed, not kept. */
    private boolean retired;

    Route(Backend backend) {
      this.backend = backend;
    }

    Future<Lease> lease(long connectTimeoutMs) {
      Conn c;
      while ((c = idle.pollFirst()) != null) {
        if (c.connection.reusable()) {
          return Future.succeededFuture(new Lease(this, c));
        }
        c.close(); // closing (the backend sent what nothing asked for) or closed
      }
      if (open < maxPerBackend) {
        return connect(connectTimeoutMs);
      }
      if (maxWaiters >= 0 && waiters.size() >= maxWaiters) {
        return Future.failedFuture(new PoolLimitException("Too many requests wait for a connection to backend "
            + backend.name() + " (upstream.max_wait_queue: " + maxWaiters + ").", false));
      }
      Waiter w = new Waiter(connectTimeoutMs);
      waiters.addLast(w);
      w.timer = vertx.setTimer(Math.max(1, connectTimeoutMs), id -> {
        if (waiters.remove(w)) {
          w.promise.tryFail(new PoolLimitException("No connection to backend " + backend.name()
              + " became free within " + connectTimeoutMs + " ms (upstream.max_connections_per_backend: "
              + maxPerBackend + ").", true));
        }
      });
      return w.promise.future();
    }

    private Future<Lease> connect(long connectTimeoutMs) {
      return connect(connectTimeoutMs, false);
    }

    /**
     * A connection being opened. It holds one place in {@code open} until it fails, times out or
     * becomes a pooled connection (which then holds it until it closes), whichever comes first.
     */
    private final class Opening {
      final Promise<Lease> leased = Promise.promise();
      private boolean holds = true;

      /** Gives the place back, or passes it on to the connection ({@code open} unchanged); false if done already. */
      boolean settle(boolean passOn) {
        if (!holds) {
          return false;
        }
        holds = false;
        if (!passOn) {
          open--;
        }
        return true;
      }

      void fail(Throwable cause) {
        settle(false);
        leased.tryFail(cause);
      }
    }

    private Future<Lease> connect(long connectTimeoutMs, boolean freedSockets) {
      open++;
      Opening opening = new Opening();
      ChannelFuture cf = bootstrap.clone()
          .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) Math.min(Integer.MAX_VALUE, Math.max(1, connectTimeoutMs)))
          .handler(new ChannelInitializer<Channel>() {
            @Override
            protected void initChannel(Channel ch) {
              ChannelPipeline p = ch.pipeline();
              if (backend.ssl()) {
                p.addLast("tls", tls.newHandler(ch.alloc(), backend.host(), backend.port()));
              }
              // A piece of body as large as a read (not Netty's 8 KiB): one read, one piece, handed on
              // as it is (UpstreamConnection). The decoder never waits to fill a piece.
              UpstreamResponseDecoder decoder = new UpstreamResponseDecoder(new HttpDecoderConfig()
                  .setMaxInitialLineLength(64 * 1024)
                  .setMaxHeaderSize(64 * 1024)
                  .setMaxChunkSize(1024 * 1024));
              p.addLast("decoder", decoder);
              p.addLast("encoder", new HttpRequestEncoder());
              p.addLast("upstream", new UpstreamConnection(ch, decoder));
            }
          })
          .connect(backend.host(), backend.port());
      // CONNECT_TIMEOUT_MILLIS bounds the TCP connect only. Resolving the backend's host (a slow DNS
      // server) and the TLS handshake (a backend that accepts and says nothing; Netty's own limit is
      // 10 s) count against the connect timeout too: the place in the pool is given back and the
      // channel closed at once.
      ScheduledFuture<?> deadline = loop.schedule(() -> {
        if (!opening.leased.future().isComplete()) {
          opening.fail(new ConnectTimeoutException("connecting to " + backend.name() + " (resolving its host, "
              + "the TCP connect and any TLS handshake) took longer than " + connectTimeoutMs + " ms"));
          cf.channel().close();
        }
      }, Math.max(1, connectTimeoutMs), TimeUnit.MILLISECONDS);
      opening.leased.future().onComplete(ar -> deadline.cancel(false));
      cf.addListener((ChannelFutureListener) f -> {
        if (loop.inEventLoop()) {
          connectDone(f, opening, connectTimeoutMs, freedSockets);
        } else {
          // A socket that could not be created never reached the loop: Netty fails its future on
          // its global executor, and the pool and the client's response belong to this loop.
          loop.execute(() -> connectDone(f, opening, connectTimeoutMs, freedSockets));
        }
      });
      return opening.leased.future();
    }

    private void connectDone(ChannelFuture f, Opening opening, long connectTimeoutMs, boolean freedSockets) {
      if (!f.isSuccess()) {
        // Netty reports a socket it could not create or register as a ChannelException; a refused,
        // unreachable or timed-out connect comes as the connect's own error. Out of sockets, idle
        // connections give theirs back and the connect is tried once more.
        if (!opening.settle(false)) {
          return; // timed out already
        }
        Promise<Lease> leased = opening.leased;
        if (!(f.cause() instanceof ChannelException)) {
          leased.tryFail(f.cause());
        } else if (freedSockets || !closeLongestIdle(FREED_WHEN_OUT_OF_SOCKETS,
            () -> connect(connectTimeoutMs, true).onComplete(ar -> {
              // the first try's deadline may have passed meanwhile: then the connection is idle
              if (ar.failed()) {
                leased.tryFail(ar.cause());
              } else if (!leased.tryComplete(ar.result())) {
                ar.result().release(true);
              }
            }))) {
          leased.tryFail(new NoSocketException(backend, f.cause()));
        }
        return;
      }
      Channel ch = f.channel();
      SslHandler ssl = ch.pipeline().get(SslHandler.class);
      if (ssl == null) {
        connected(ch, opening);
      } else {
        // an https backend is ready once its certificate is checked: a bad one is a connect error
        ssl.handshakeFuture().addListener(h -> {
          if (h.isSuccess()) {
            connected(ch, opening);
          } else {
            opening.fail(h.cause());
            ch.close();
          }
        });
      }
    }

    private void connected(Channel ch, Opening opening) {
      if (!opening.settle(true)) {
        ch.close(); // timed out already: its place is given back
        return;
      }
      Promise<Lease> leased = opening.leased;
      UpstreamConnection connection = ch.pipeline().get(UpstreamConnection.class);
      Conn c = new Conn(connection);
      Runnable onClose = () -> {
        c.closed = true;
        open--;
        serveWaiter();
      };
      if (connection.isClosed()) { // closed before it could be handed out: its close handler never runs
        onClose.run();
        leased.tryFail(new ClosedChannelException());
        return;
      }
      connection.closeHandler(onClose);
      if (closed) {
        c.close();
        leased.tryFail(new IllegalStateException("the upstream client is closed"));
        return;
      }
      leased.tryComplete(new Lease(this, c));
    }

    void giveBack(Conn c) {
      Waiter w = waiters.pollFirst();
      if (w != null) {
        vertx.cancelTimer(w.timer);
        w.promise.complete(new Lease(this, c));
        return;
      }
      if (retired) {
        c.close();
        return;
      }
      c.idleSince = System.nanoTime();
      idle.addFirst(c);
    }

    /** A connection closed: a waiter may open a new one. */
    private void serveWaiter() {
      if (closed || open >= maxPerBackend) {
        return;
      }
      Waiter w = waiters.pollFirst();
      if (w == null) {
        return;
      }
      vertx.cancelTimer(w.timer);
      connect(w.connectTimeoutMs).onComplete(w.promise);
    }

    /** Closes idle connections unused for the keep-alive timeout; the oldest are at the end. */
    void expire(long now) {
      Conn c;
      while ((c = idle.peekLast()) != null && (c.closed || now - c.idleSince >= keepAliveNanos)) {
        idle.pollLast();
        c.close();
      }
    }

    /** Its backend left the config: closes the idle connections; those still leased close when given back. */
    void retire() {
      retired = true;
      List<Conn> all = new ArrayList<>(idle);
      idle.clear();
      all.forEach(Conn::close);
    }

    void closeAll() {
      retire();
      Waiter w;
      while ((w = waiters.pollFirst()) != null) {
        vertx.cancelTimer(w.timer);
        w.promise.tryFail(new IllegalStateException("the upstream client is closed"));
      }
    }
  }
}
