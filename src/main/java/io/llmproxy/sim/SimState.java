package io.llmproxy.sim;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Everything one {@link Simulator} knows, shared by all its server instances (one per event loop
 * at most): the current profile, the request log, the counters and the connections.
 */
final class SimState {

  static final CharSequence APPLICATION_JSON = HttpHeaders.createOptimized("application/json");

  /** How many closed connections {@link #connectionClosedAtNanos} remembers. */
  private static final int CLOSED_CONNECTIONS_KEPT = 100_000;
  /** How many of the latest requests {@code /sim/stats} lists. */
  private static final int STATS_SERVED_LISTED = 100;

  private static final ObjectMapper JSON = new ObjectMapper();

  private volatile Profile profile;
  private volatile boolean closing;

  private final AtomicLong requestIds = new AtomicLong();
  private final AtomicLong connectionIds = new AtomicLong();
  private final ArrayDeque<SimExchange> log = new ArrayDeque<>();

  private final LongAdder served = new LongAdder();
  private final LongAdder completed = new LongAdder();
  private final LongAdder disconnected = new LongAdder();
  private final LongAdder failed = new LongAdder();
  private final LongAdder hung = new LongAdder();
  private final LongAdder connectionsOpened = new LongAdder();
  private final LongAdder connectionsClosed = new LongAdder();

  private final ConcurrentHashMap<HttpConnection, Long> openConnections = new ConcurrentHashMap<>();
  private final Map<Long, Long> closedConnections = new LinkedHashMap<>() {
    @Override
    protected boolean removeEldestEntry(Map.Entry<Long, Long> eldest) {
      return size() > CLOSED_CONNECTIONS_KEPT;
    }
  };

  SimState(SimulatorOptions options) {
    this.profile = new Profile(options);
  }

  Profile profile() {
    return profile;
  }

  void options(SimulatorOptions options) {
    this.profile = new Profile(options);
  }

  void closing() {
    closing = true;
  }

  /** Numbers a new connection and watches for its close. */
  long connectionOpened(HttpConnection connection) {
    long id = connectionIds.incrementAndGet();
    Long previous = openConnections.putIfAbsent(connection, id);
    if (previous != null) {
      return previous;
    }
    connectionsOpened.increment();
    connection.closeHandler(v -> connectionClosed(connection, id));
    return id;
  }

  /** The id of a request's connection (numbered now if its connection was not seen open). */
  long connectionId(HttpConnection connection) {
    Long id = openConnections.get(connection);
    return id != null ? id : connectionOpened(connection);
  }

  private void connectionClosed(HttpConnection connection, long id) {
    long now = System.nanoTime();
    if (openConnections.remove(connection) != null) {
      connectionsClosed.increment();
    }
    synchronized (closedConnections) {
      closedConnections.put(id, now);
    }
  }

  OptionalLong connectionClosedAtNanos(long connectionId) {
    synchronized (closedConnections) {
      Long at = closedConnections.get(connectionId);
      return at == null ? OptionalLong.empty() : OptionalLong.of(at);
    }
  }

  List<HttpConnection> openConnectionList() {
    return new ArrayList<>(openConnections.keySet());
  }

  /** Numbers and logs a request that has just arrived. */
  SimExchange begin(HttpServerRequest request, long connectionId) {
    SimExchange exchange = new SimExchange(requestIds.incrementAndGet(), request.method().name(),
        request.path(), request.headers(), connectionId, System.nanoTime());
    served.increment();
    int limit = profile.options.recordLimit();
    synchronized (log) {
      while (log.size() >= limit && !log.isEmpty()) {
        log.pollFirst();
      }
      if (limit > 0) {
        log.addLast(exchange);
      }
    }
    return exchange;
  }

  /** The client's connection closed; counts a disconnect if the response had not ended. */
  void clientClosed(SimExchange exchange) {
    if (closing) {
      exchange.stopResponse(); // the simulator stopped: no client disconnect
    } else if (exchange.clientClosed(System.nanoTime())) {
      disconnected.increment();
    }
  }

  void hung() {
    hung.increment();
  }

  /** Sends a whole JSON response. */
  void respond(HttpServerResponse response, SimExchange exchange, int status, Buffer body) {
    response.putHeader(HttpHeaders.CONTENT_TYPE, APPLICATION_JSON);
    respondRaw(response, exchange, status, body);
  }

  /** Sends a whole response with the headers set so far; {@code body} may be null. */
  void respondRaw(HttpServerResponse response, SimExchange exchange, int status, Buffer body) {
    exchange.status(status);
    response.setStatusCode(status);
    end(response, exchange, body);
  }

  /** Ends a response whose status was already recorded, with a last chunk or none (null). */
  void end(HttpServerResponse response, SimExchange exchange, Buffer body) {
    if (closing) {
      return; // stopped: a request in progress is dropped, never answered (its connection closes)
    }
    exchange.completed();
    completed.increment();
    if (response.getStatusCode() >= 400) {
      failed.increment();
    }
    if (body == null) {
      response.end();
    } else {
      response.end(body);
    }
  }

  List<RequestRecord> records() {
    SimExchange[] exchanges;
    synchronized (log) {
      exchanges = log.toArray(new SimExchange[0]);
    }
    List<RequestRecord> records = new ArrayList<>(exchanges.length);
    for (SimExchange e : exchanges) {
      records.add(e.snapshot());
    }
    return records;
  }

  SimStats stats() {
    return new SimStats(served.sum(), completed.sum(), disconnected.sum(), failed.sum(), hung.sum(),
        connectionsOpened.sum(), connectionsClosed.sum(), openConnections.size());
  }

  void reset() {
    synchronized (log) {
      log.clear();
    }
    served.reset();
    completed.reset();
    disconnected.reset();
    failed.reset();
    hung.reset();
    connectionsOpened.reset();
    connectionsClosed.reset();
  }

  /** The body of {@code GET /sim/stats}. */
  Buffer statsJson() {
    SimStats s = stats();
    ObjectNode root = JSON.createObjectNode();
    root.put("name", profile.options.name());
    root.put("served", s.served());
    root.put("completed", s.completed());
    root.put("disconnected", s.disconnected());
    root.put("failed", s.failed());
    root.put("hung", s.hung());
    root.put("connections_opened", s.connectionsOpened());
    root.put("connections_closed", s.connectionsClosed());
    root.put("open_connections", s.openConnections());
    ArrayNode disconnectedRequests = root.putArray("disconnected_requests");
    ArrayNode servedRequests = root.putArray("served_requests");
    SimExchange[] exchanges;
    synchronized (log) {
      exchanges = log.toArray(new SimExchange[0]);
    }
    int firstListed = Math.max(0, exchanges.length - STATS_SERVED_LISTED);
    for (int i = 0; i < exchanges.length; i++) {
      boolean listServed = i >= firstListed;
      exchanges[i].describe((id, path, model, stream, status, chunks, done, gone, afterNanos) -> {
        if (gone) {
          disconnectedRequests.addObject()
              .put("id", id)
              .put("path", path)
              .put("model", model)
              .put("chunks_sent", chunks)
              .put("after_ms", afterNanos / 1_000_000);
        }
        if (listServed) {
          servedRequests.addObject()
              .put("id", id)
              .put("path", path)
              .put("model", model)
              .put("stream", stream)
              .put("status", status)
              .put("chunks_sent", chunks)
              .put("completed", done);
        }
      });
    }
    try {
      return Buffer.buffer(JSON.writeValueAsBytes(root));
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Nanoseconds to timer milliseconds, rounded to the nearest; 0 means at once. */
  static long millis(long nanos) {
    return (nanos + 500_000) / 1_000_000;
  }
}
