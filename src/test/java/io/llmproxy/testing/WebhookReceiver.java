package io.llmproxy.testing;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonObject;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A usage-webhook receiver on a free port, for tests that assert what billing saw. It answers 200 while
 * up, or a given status (503, 400, ...) while failing (for every event or for one request id), and can stop listening altogether (connections
 * refused) and start again on the same port. It records every request it answered 2xx, with the
 * headers the delivery contract requires, and counts the others.
 */
public final class WebhookReceiver implements AutoCloseable {
  /** One request the receiver accepted (answered 200), and when ({@link System#nanoTime}). */
  public record Received(String idempotencyKey, String xRequestId, String contentType, JsonObject body,
      long atNanos) {
    public String requestId() {
      return body.getString("request_id");
    }
  }

  private final Vertx vertx;
  private final List<Received> received = new CopyOnWriteArrayList<>();
  private final AtomicInteger refused = new AtomicInteger();
  private volatile int status = 200;
  private final Map<String, Integer> perRequest = new ConcurrentHashMap<>();
  private volatile HttpServer server;
  private int port;

  private WebhookReceiver(Vertx vertx) {
    this.vertx = vertx;
  }

  /** Starts answering 200 on 127.0.0.1, a free port. */
  public static WebhookReceiver start(Vertx vertx) {
    WebhookReceiver r = new WebhookReceiver(vertx);
    r.listen(0);
    return r;
  }

  private void listen(int onPort) {
    HttpServer s = vertx.createHttpServer();
    s.requestHandler(req -> req.body().onSuccess(body -> {
      JsonObject json = body.toJsonObject();
      int answer = perRequest.getOrDefault(String.valueOf(json.getValue("request_id")), status);
      if (answer >= 200 && answer < 300) {
        received.add(new Received(req.getHeader("Idempotency-Key"), req.getHeader("X-Request-Id"),
            req.getHeader("Content-Type"), json, System.nanoTime()));
      } else {
        refused.incrementAndGet();
      }
      req.response().setStatusCode(answer).end();
    }));
    server = TestGateway.await(s.listen(onPort, "127.0.0.1"));
    port = server.actualPort();
  }

  /** The URL to configure as {@code usage_hook.url}. */
  public String url() {
    return "http://127.0.0.1:" + port + "/usage";
  }

  /** Answers 200 from now on (listening again if it was stopped). */
  public WebhookReceiver up() {
    status = 200;
    if (server == null) {
      listen(port);
    }
    return this;
  }

  /** Answers {@code status} to every request from now on. */
  public WebhookReceiver failWith(int status) {
    this.status = status;
    return this;
  }

  /** Answers {@code status} to the event with this request id, whatever the others get; 0 to stop. */
  public WebhookReceiver answer(String requestId, int status) {
    if (status == 0) {
      perRequest.remove(requestId);
    } else {
      perRequest.put(requestId, status);
    }
    return this;
  }

  /** Stops listening: connections are refused until {@link #up}. Connections already open are closed. */
  public WebhookReceiver stop() {
    HttpServer s = server;
    server = null;
    if (s != null) {
      TestGateway.await(s.close());
    }
    return this;
  }

  /** Every accepted request, in arrival order (a re-delivered event appears again). */
  public List<Received> received() {
    return List.copyOf(received);
  }

  /** The request ids of the accepted events, each once. */
  public Set<String> requestIds() {
    Set<String> ids = new LinkedHashSet<>();
    for (Received r : received) {
      ids.add(r.requestId());
    }
    return ids;
  }

  /** Requests answered with something other than 2xx. */
  public int refused() {
    return refused.get();
  }

  @Override
  public void close() {
    stop();
  }
}
