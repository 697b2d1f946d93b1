package io.llmproxy.bench;

import static java.util.Objects.requireNonNull;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientConnection;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnectOptions;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Many idle keep-alive connections, as a large client pool holds them: opens {@code connections}
 * connections (unpooled, each its own), sends one request on each, holds them all idle for
 * {@code hold}, then sends one more request on each. A connection closed while idle and a failed
 * request are each counted; the scenario holds when neither happens.
 */
public final class IdleConnections {
  private final Vertx vertx;
  private final URI baseUrl;
  private final String path;
  private final Buffer body;
  private final java.util.Map<String, String> headers;
  private final int connections;
  private final Duration hold;
  private final AtomicInteger open = new AtomicInteger();

  /**
   * @param opened     connections opened
   * @param closedIdle of those, closed (by the server or the network) before the second request
   * @param errors     failed connects and requests, by round and kind
   */
  public record Result(int connections, int opened, int closedIdle, Map<String, Integer> errors) {
    public int errorCount() {
      return errors.values().stream().mapToInt(Integer::intValue).sum();
    }

    /** Every connection opened, none closed while idle, no request failed. */
    public boolean held() {
      return opened == connections && closedIdle == 0 && errorCount() == 0;
    }

    public String json() {
      StringBuilder b = new StringBuilder("{\"connections\":").append(connections)
          .append(",\"opened\":").append(opened).append(",\"closed_while_idle\":").append(closedIdle)
          .append(",\"held\":").append(held()).append(",\"errors\":").append(errorCount())
          .append(",\"errors_by_kind\":{");
      String sep = "";
      for (Map.Entry<String, Integer> e : errors.entrySet()) {
        b.append(sep).append('"').append(e.getKey()).append("\":").append(e.getValue());
        sep = ",";
      }
      return b.append("}}").toString();
    }
  }

  public IdleConnections(Vertx vertx, BenchSettings settings, int connections, Duration hold) {
    this.headers = settings.headers();
    this.vertx = requireNonNull(vertx, "vertx");
    this.baseUrl = settings.baseUrl();
    this.path = settings.path();
    this.body = Buffer.buffer(settings.requestBody());
    if (connections < 1) {
      throw new IllegalArgumentException("connections must be at least 1");
    }
    this.connections = connections;
    this.hold = requireNonNull(hold, "hold");
  }

  /** Connections open now. */
  public int open() {
    return open.get();
  }

  public Future<Result> run() {
    // Every request chained on one context, where no response can arrive while a chain is being
    // built: chained from another thread, resp.body() can be asked for after the response ended, and
    // never completes.
    Promise<Result> result = Promise.promise();
    vertx.getOrCreateContext().runOnContext(v -> start().onComplete(result));
    return result.future();
  }

  private Future<Result> start() {
    boolean ssl = "https".equalsIgnoreCase(baseUrl.getScheme());
    int port = baseUrl.getPort() > 0 ? baseUrl.getPort() : ssl ? 443 : 80;
    HttpClientAgent http = vertx.createHttpClient(new HttpClientOptions()
        .setSsl(ssl).setTrustAll(true).setVerifyHost(false).setKeepAlive(true).setTcpNoDelay(true));
    Map<String, Integer> errors = new ConcurrentHashMap<>();
    AtomicInteger opened = new AtomicInteger();
    AtomicInteger closed = new AtomicInteger();
    List<Future<HttpClientConnection>> first = new ArrayList<>(connections);
    for (int i = 0; i < connections; i++) {
      first.add(http.connect(new HttpConnectOptions().setHost(baseUrl.getHost()).setPort(port).setSsl(ssl))
          .recover(t -> failed(errors, "connect_", t))
          .compose(conn -> {
            opened.incrementAndGet();
            open.incrementAndGet();
            conn.closeHandler(v -> {
              open.decrementAndGet();
              closed.incrementAndGet();
            });
            return request(conn, errors, "").map(conn);
          }));
    }
    Promise<Result> done = Promise.promise();
    Future.join(first).onComplete(ignored -> {
      vertx.setTimer(Math.max(1, hold.toMillis()), id -> {
        int closedIdle = closed.get(); // during the first round or the hold: none should be
        List<Future<?>> second = new ArrayList<>(connections);
        List<HttpClientConnection> live = new ArrayList<>(connections);
        for (Future<HttpClientConnection> f : first) {
          if (f.succeeded()) {
            live.add(f.result());
            second.add(request(f.result(), errors, "after_idle_"));
          }
        }
        Future.join(second).onComplete(r2 -> {
          Future.join(live.stream().map(HttpClientConnection::close).toList())
              .eventually(http::close)
              .onComplete(v -> done.complete(new Result(connections, opened.get(), closedIdle,
                  new TreeMap<>(errors))));
        });
      });
    });
    return done.future();
  }

  private Future<Void> request(HttpClientConnection conn, Map<String, Integer> errors, String round) {
    RequestOptions o = new RequestOptions().setMethod(HttpMethod.POST).setURI(path)
        .putHeader(HttpHeaders.CONTENT_TYPE, "application/json").setIdleTimeout(60_000);
    headers.forEach(o::putHeader);
    return conn.request(o)
        .compose(req -> req.send(body))
        .compose(resp -> resp.body().compose(b -> resp.statusCode() / 100 == 2
            ? Future.<Void>succeededFuture()
            : Future.failedFuture(new IllegalStateException("http_" + resp.statusCode()))))
        .recover(t -> failed(errors, round, t));
  }

  private static <T> Future<T> failed(Map<String, Integer> errors, String round, Throwable t) {
    String kind = t instanceof TimeoutException ? "timeout"
        : t instanceof IllegalStateException && t.getMessage() != null && t.getMessage().startsWith("http_")
            ? t.getMessage() : "failed";
    errors.merge(round + kind, 1, Integer::sum);
    return Future.failedFuture(t);
  }
}
