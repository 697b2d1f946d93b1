package io.llmproxy.sim;

import static java.util.Objects.requireNonNull;

import io.llmproxy.api.PerEventLoop;
import io.vertx.core.Context;
import io.vertx.core.Deployable;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A simulated vLLM-like, OpenAI-compatible backend: the backend of every gateway test, of
 * {@code llmproxy demo} and of load benchmarks.
 *
 * <p>It serves {@code POST /v1/chat/completions}, {@code /v1/completions}, {@code /v1/embeddings},
 * TGI's {@code POST /generate} and {@code /generate_stream}, {@code GET /v1/models},
 * {@code GET /health} and {@code GET /sim/stats}, with the latencies, failures and hangs its
 * {@link SimulatorOptions} ask for. It records every request (but {@code /sim/stats}) with what it
 * did, and notices at once when a client disconnects before its response ended.
 *
 * <p>Everything runs on Vert.x event loops with timers; nothing blocks.
 */
public final class Simulator {

  private static final AtomicInteger SHARED_EPHEMERAL_PORTS = new AtomicInteger();

  private final Vertx vertx;
  private final SimState state;
  /** Its servers, one per event loop; null before they listen and once closed. */
  private volatile PerEventLoop<?> servers;
  private final String host;
  private volatile int port;

  private Simulator(Vertx vertx, SimState state, String host) {
    this.vertx = vertx;
    this.state = state;
    this.host = host;
  }

  /** Starts one simulator with one HTTP server, listening on the options' host and port. */
  public static Future<Simulator> start(Vertx vertx, SimulatorOptions options) {
    return start(vertx, options, 1);
  }

  /**
   * Starts one simulator served by {@code instances} HTTP servers on one port, each on its own
   * event loop, sharing one state (records, counters, options). For load benchmarks.
   */
  public static Future<Simulator> start(Vertx vertx, SimulatorOptions options, int instances) {
    requireNonNull(vertx, "vertx");
    requireNonNull(options, "options");
    if (instances < 1) {
      throw new IllegalArgumentException("instances must be at least 1: " + instances);
    }
    Simulator simulator = new Simulator(vertx, new SimState(options), options.host());
    // Vert.x shares one listening socket among the servers of a port. An ephemeral port is shared
    // only when asked for as a negative number, the same for all the servers that share it (0
    // gives every server its own port); each simulator takes a number of its own.
    int port = options.port() == 0 && instances > 1
        ? -SHARED_EPHEMERAL_PORTS.incrementAndGet()
        : options.port();
    HttpServerOptions serverOptions = new HttpServerOptions()
        .setHost(options.host())
        .setPort(port)
        .setTcpNoDelay(true)
        .setHandle100ContinueAutomatically(true);
    return PerEventLoop.deploy(vertx, instances, () -> simulator.server(serverOptions))
        .map(servers -> {
          simulator.servers = servers;
          return simulator;
        });
  }

  /** One HTTP server on its own event-loop context, closed on undeploy. */
  private Deployable server(HttpServerOptions serverOptions) {
    return new Deployable() {
      private HttpServer server;

      @Override
      public Future<?> deploy(Context context) {
        server = context.owner().createHttpServer(new HttpServerOptions(serverOptions));
        server.connectionHandler(state::connectionOpened);
        server.requestHandler(new SimHandler(context.owner(), state));
        return server.listen().onSuccess(s -> port = s.actualPort());
      }

      @Override
      public Future<?> undeploy(Context context) {
        return server.close();
      }
    };
  }

  /** The port it listens on. */
  public int port() {
    return port;
  }

  /** {@code http://host:port}; a wildcard host reads as 127.0.0.1. */
  public String url() {
    String h = switch (host) {
      case "0.0.0.0", "::", "[::]" -> "127.0.0.1";
      default -> host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host;
    };
    return "http://" + h + ":" + port;
  }

  public SimulatorOptions options() {
    return state.profile().options;
  }

  /**
   * Swaps the behaviour for requests that arrive from now on; requests in progress keep theirs.
   * The host and port are not changed.
   */
  public void options(SimulatorOptions options) {
    state.options(requireNonNull(options, "options"));
  }

  /** A snapshot of the kept requests, oldest first, including those still in progress. */
  public List<RequestRecord> requests() {
    return state.records();
  }

  public SimStats stats() {
    return state.stats();
  }

  /**
   * When the connection with this id closed, by either side; empty while it is open (or if it is
   * unknown, or one of more than 100,000 closed since).
   */
  public OptionalLong connectionClosedAtNanos(long connectionId) {
    return state.connectionClosedAtNanos(connectionId);
  }

  /**
   * Forgets the kept requests and zeroes the counters. Request ids keep counting, open connections
   * stay counted, and closed connections stay known to {@link #connectionClosedAtNanos}.
   */
  public void reset() {
    state.reset();
  }

  /**
   * Stops listening and closes every open connection; requests in progress are dropped without
   * being counted as client disconnects.
   */
  public Future<Void> close() {
    state.closing();
    PerEventLoop<?> s = servers;
    servers = null;
    Future<Void> undeployed = s == null ? Future.succeededFuture() : s.undeploy();
    return undeployed.transform(ignored -> {
      List<Future<?>> closed = new ArrayList<>();
      for (HttpConnection connection : state.openConnectionList()) {
        closed.add(connection.close());
      }
      return Future.join(closed).<Void>mapEmpty().otherwiseEmpty();
    });
  }
}
