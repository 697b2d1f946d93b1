package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TcpState;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Context;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Issue 3, forwarding: backpressure. A client that stops reading a long, fast stream makes the
 * gateway stop reading from the backend, so the backend's writes stall (its write queue stays full)
 * long before it has written the whole stream; when the client reads again the stream resumes and
 * every byte arrives intact.
 *
 * <p>What makes it deterministic: the stream (64 MiB) is larger than everything that can hold it on
 * the way. The backend's send buffer and the client's receive buffer are fixed at 256 KiB; the
 * gateway's two sockets are tuned by the kernel, up to tcp_rmem's and tcp_wmem's maximum (32 MiB and
 * 4 MiB on this machine); Vert.x's queues add some KiB. So at most about 37 MiB can be in flight,
 * and in practice 6 to 9 MiB is. Without backpressure the backend would write the whole stream
 * while the client reads nothing; with it the backend is held at a fraction of it for as long as
 * the client does not read. The stall is observed as the backend waiting for a drain with no
 * progress over several polls, not by sleeping.
 *
 * <p>The idle timeout is short (300 ms) and the client stays paused well past it: a client that
 * reads slowly must not fail the stream as if the backend had gone quiet.
 */
class BackpressureTest {
  private static final int EVENT_SIZE = 16 * 1024;
  private static final int EVENTS = 4 * 1024; // 64 MiB
  /** The backend's send buffer and the client's receive buffer: fixed, so the kernel does not grow them. */
  private static final int SOCKET_BUFFER = 256 * 1024;

  /**
   * A backend that streams {@link #EVENTS} SSE events of {@link #EVENT_SIZE} bytes as fast as its
   * write queue takes them, and waits for a drain whenever it is full.
   */
  private static final class FloodBackend implements AutoCloseable {
    private final HttpServer server;
    final AtomicInteger posts = new AtomicInteger();
    final AtomicInteger written = new AtomicInteger();
    final AtomicInteger drainWaits = new AtomicInteger();
    volatile boolean waitingForDrain;
    volatile boolean ended;
    /** The gateway closed the stream's connection before the end (it cancelled the request). */
    volatile boolean cut;

    FloodBackend(Vertx vertx) {
      server = vertx.createHttpServer(new HttpServerOptions().setSendBufferSize(SOCKET_BUFFER));
      server.requestHandler(req -> req.body().onSuccess(body -> {
        if (req.method() != HttpMethod.POST) {
          req.response().setStatusCode(404).end(); // the gateway's GET /v1/models must not take the stream
          return;
        }
        posts.incrementAndGet();
        HttpServerResponse resp = req.response().setChunked(true)
            .putHeader(HttpHeaders.CONTENT_TYPE, "text/event-stream");
        resp.closeHandler(v -> cut = !ended);
        pump(resp);
      }));
      TestGateway.await(server.listen(0, "127.0.0.1"));
    }

    private void pump(HttpServerResponse resp) {
      while (written.get() < EVENTS) {
        if (resp.writeQueueFull()) {
          waitingForDrain = true;
          drainWaits.incrementAndGet();
          resp.drainHandler(v -> {
            waitingForDrain = false;
            pump(resp);
          });
          return;
        }
        resp.write(event(written.getAndIncrement()));
      }
      resp.end();
      ended = true;
    }

    String url() {
      return "http://127.0.0.1:" + server.actualPort();
    }

    @Override
    public void close() {
      TestGateway.await(server.close());
    }
  }

  /**
   * Event {@code i}: {@code data: {"seq":i,"choices":[{"index":0,"delta":{"content":"..."}}]}\n\n},
   * exactly {@link #EVENT_SIZE} bytes; its content makes it a token, so the idle timeout runs.
   */
  static Buffer event(int i) {
    String head = "data: {\"seq\":" + i + ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"";
    String tail = "\"}}]}\n\n";
    char[] pad = new char[EVENT_SIZE - head.length() - tail.length()];
    Arrays.fill(pad, (char) ('a' + i % 26));
    return Buffer.buffer(head + new String(pad) + tail);
  }

  private Vertx vertx;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
  }

  @AfterEach
  void stop() {
    TestGateway.await(vertx.close());
  }

  /** A gateway in front of {@code flood}, with a short idle timeout and these {@code limits}; its access log is kept. */
  private static TestGateway gateway(FloodBackend flood, String limits) {
    return TestGateway.builder("""
        backends:
          - url: "${FLOOD}"
        routing: {timeouts: {idle: 300ms}}
        limits: %s
        health_check: {enabled: false}
        """.formatted(limits)).vars(Map.of("FLOOD", flood.url())).captureAccessLog().start();
  }

  /**
   * The gateway's end of the client's connection leaves ESTABLISHED: its socket is closed, though
   * the client has read nothing (seen in the kernel's table of connections, where there is one).
   */
  private static void awaitGatewayClosed(TestGateway gw, PausedStream p) {
    int clientPort = p.resp().request().connection().localAddress().port();
    if (TcpState.available()) {
      assertThat(TcpState.of(clientPort, gw.port())).as("the client's end").isEqualTo("ESTABLISHED");
      await("the gateway closes its end while the client reads nothing").atMost(Duration.ofSeconds(5))
          .until(() -> !TcpState.of(gw.port(), clientPort).equals("ESTABLISHED"));
    }
  }

  /** A streaming request whose response the client does not read yet. */
  private record PausedStream(HttpClientAgent http, Context context, HttpClientResponse resp, Buffer received,
      Promise<Void> end, Promise<Void> connectionClosed) {}

  private static PausedStream openPaused(TestGateway gw) {
    return openPaused(gw, true);
  }

  private static PausedStream openPaused(TestGateway gw, boolean stream) {
    HttpClientAgent http = gw.vertx.createHttpClient(new HttpClientOptions()
        .setDefaultHost("127.0.0.1").setDefaultPort(gw.port()).setReceiveBufferSize(SOCKET_BUFFER));
    Context context = gw.vertx.getOrCreateContext();
    Buffer received = Buffer.buffer(EVENTS * EVENT_SIZE);
    Promise<HttpClientResponse> head = Promise.promise();
    Promise<Void> end = Promise.promise();
    Promise<Void> connectionClosed = Promise.promise();
    context.runOnContext(v -> http.request(HttpMethod.POST, "/v1/chat/completions")
        .compose(req -> req.putHeader(HttpHeaders.CONTENT_TYPE, "application/json")
            .send(TestClient.chat("m", stream)))
        .onFailure(head::tryFail)
        .onSuccess(resp -> {
          resp.pause(); // the client reads nothing for now
          resp.handler(received::appendBuffer);
          resp.exceptionHandler(end::tryFail);
          resp.endHandler(x -> end.tryComplete());
          resp.request().connection().closeHandler(x -> connectionClosed.tryComplete());
          head.complete(resp);
        }));
    HttpClientResponse resp = TestGateway.await(head.future());
    assertThat(resp.statusCode()).isEqualTo(200);
    return new PausedStream(http, context, resp, received, end, connectionClosed);
  }

  /** The backend stalls: it waits for a drain, and its count stands still over several polls. */
  private static int awaitStall(FloodBackend flood) {
    int[] last = {-1};
    int[] stillFor = {0};
    await("the backend stalls while the client reads nothing").atMost(Duration.ofSeconds(10))
        .pollInterval(Duration.ofMillis(50))
        .failFast("the backend wrote the whole stream while the client read nothing", () -> flood.ended)
        .until(() -> {
          int now = flood.written.get();
          stillFor[0] = now == last[0] && flood.waitingForDrain ? stillFor[0] + 1 : 0;
          last[0] = now;
          return stillFor[0] >= 4;
        });
    return flood.written.get();
  }

  @Test
  void aClientThatStopsReadingStallsTheBackendAndEveryByteArrivesWhenItReadsAgain() {
    try (FloodBackend flood = new FloodBackend(vertx); TestGateway gw = gateway(flood, "{}")) {
      PausedStream p = openPaused(gw);
      int stalledAt = awaitStall(flood);
      System.out.printf("stalled at %d of %d events (%d KiB buffered on the way)%n", stalledAt, EVENTS,
          (long) stalledAt * EVENT_SIZE / 1024);
      assertThat(flood.ended).isFalse();
      // Below the most the buffers on the way can hold (about 37 of the 64 MiB, see above).
      assertThat(stalledAt).as("events written while the client read nothing").isLessThan(EVENTS * 3 / 4);
      assertThat(flood.posts.get()).isEqualTo(1);
      assertThat(p.received().length()).as("bytes the paused client was handed").isZero();
      await("the stream stays open while the client reads nothing, past the idle timeout")
          .during(Duration.ofMillis(1_000)).atMost(Duration.ofSeconds(3))
          .until(() -> !p.end().future().isComplete());

      // The client reads again: the backend resumes and the whole stream arrives, byte for byte.
      p.context().runOnContext(v -> p.resp().resume());
      TestGateway.await(p.end().future());
      assertThat(flood.ended).as("the backend wrote the whole stream; the gateway logged %s", gw.accessLog()).isTrue();
      assertThat(flood.written.get()).isEqualTo(EVENTS);
      assertThat(flood.drainWaits.get()).isPositive();
      assertThat(p.received().length()).isEqualTo(EVENTS * EVENT_SIZE);
      for (int i = 0; i < EVENTS; i++) {
        Buffer got = p.received().getBuffer(i * EVENT_SIZE, (i + 1) * EVENT_SIZE);
        if (!got.equals(event(i))) {
          throw new AssertionError("event " + i + " differs: " + got.getString(0, 40, StandardCharsets.UTF_8.name()));
        }
      }
      TestGateway.await(p.http().close());
    }
  }

  /**
   * A client that reads nothing more is disconnected after {@code limits.client_send_timeout}, and
   * the backend's request is cancelled with it: it does not hold the backend until the total timeout.
   * The connection closes at once, not behind the bytes queued for the client (as Vert.x's own close
   * would: a client that never reads would hold them, and the buffers they pin, for good).
   */
  @Test
  void aClientThatNeverReadsAgainIsDisconnectedAfterTheSendTimeoutAndTheBackendFreed() {
    try (FloodBackend flood = new FloodBackend(vertx); TestGateway gw = gateway(flood, "{client_send_timeout: 1s}")) {
      PausedStream p = openPaused(gw);
      awaitStall(flood);
      long stalled = System.nanoTime();

      await("the backend's request is cancelled").atMost(Duration.ofSeconds(5)).until(() -> flood.cut);
      long afterMs = (System.nanoTime() - stalled) / 1_000_000;
      assertThat(afterMs).as("ms from the stall to the cancel").isLessThan(3_000);
      assertThat(flood.ended).isFalse();
      awaitGatewayClosed(gw, p);
      p.context().runOnContext(v -> p.resp().resume());
      await("the client, reading again, finds its connection closed").atMost(Duration.ofSeconds(10))
          .until(() -> p.connectionClosed().future().isComplete());
      assertThat(p.received().length()).as("bytes the client got").isLessThan(EVENTS * EVENT_SIZE);

      String metrics = gw.gateway.metrics().scrape();
      assertThat(metrics).contains("llmproxy_cancelled_upstream_total{reason=\"client_disconnect\"} 1.0");
      assertThat(metrics).containsPattern("llmproxy_requests_total\\{[^}]*status=\"499\"[^}]*} 1.0");
      assertThat(gw.accessLog()).contains("client_send_timeout");
      TestGateway.await(p.http().close());
    }
  }

  /**
   * A response can end with much of it still queued for the client: a hedged answer is held whole
   * and then written at once. A client that reads none of it is cut off at the keep-alive timeout;
   * a graceful close would wait behind those bytes for as long as the client stays connected.
   */
  @Test
  void aResponseTheClientNeverReadsIsCutOffAtTheKeepAliveTimeout() {
    Buffer big = Buffer.buffer("{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""
        + "x".repeat(12 << 20) + "\"}}]}");
    HttpServer[] backends = new HttpServer[2];
    String[] urls = new String[2];
    for (int i = 0; i < 2; i++) {
      backends[i] = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b ->
          req.response().putHeader(HttpHeaders.CONTENT_TYPE, "application/json").end(big)));
      urls[i] = "http://127.0.0.1:" + TestGateway.await(backends[i].listen(0, "127.0.0.1")).actualPort();
    }
    try (TestGateway gw = TestGateway.builder("""
        backends:
          - {url: "${A}", name: a}
          - {url: "${B}", name: b}
        routing:
          hedge: {enabled: true, cold_start_race: true, min_samples: 1000, max_parallel: 2, budget_percent: 100}
        limits: {client_keep_alive_timeout: 1s}
        health_check: {enabled: false}
        outlier_detection: {enabled: false}
        """).vars(Map.of("A", urls[0], "B", urls[1])).start()) {
      PausedStream p = openPaused(gw, false);
      assertThat(p.resp().getHeader("x-llmproxy-hedged")).isEqualTo("true");
      awaitGatewayClosed(gw, p);
      assertThat(p.end().future().isComplete()).as("the client never had the whole body").isFalse();
      TestGateway.await(p.http().close());
    }
  }
}
