package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.routing.Backend;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.ConnectTimeoutException;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpRequestEncoder;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpVersion;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.SelfSignedCertificate;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The upstream connection below the gateway's features: https backends verified by host name, and
 * the HTTP/1.1 framing a backend may use (informational responses, {@code Connection: close}, a cut
 * body), and what one read brings handed on as one chunk, each checked on a real server on port 0.
 */
class UpstreamConnectionTest {
  private Vertx vertx;
  private Context context;

  @BeforeEach
  void setUp() {
    vertx = Vertx.vertx();
    context = vertx.getOrCreateContext();
  }

  @AfterEach
  void tearDown() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  /** What one exchange heard. */
  record Heard(int status, String body, int chunks, boolean reusable, Throwable error) {}

  @Test
  void anHttpsBackendIsVerifiedByItsHostNameAndServes() throws Exception {
    SelfSignedCertificate cert = SelfSignedCertificate.create("localhost");
    int port = https(cert);
    UpstreamClient client = client(cert);
    Heard h = exchange(client, backend("https://localhost:" + port));
    assertThat(h.error()).isNull();
    assertThat(h.status()).isEqualTo(200);
    assertThat(h.body()).isEqualTo("over tls");
    assertThat(h.reusable()).isTrue();
  }

  @Test
  void aStreamOverHttpsIsHandedOnAsItArrives() throws Exception {
    // Each event is handed on when its read completes, TLS in between: none waits for the next.
    SelfSignedCertificate cert = SelfSignedCertificate.create("localhost");
    HttpServer server = vertx.createHttpServer(new HttpServerOptions().setSsl(true)
        .setKeyCertOptions(cert.keyCertOptions()))
        .requestHandler(req -> {
          req.response().setChunked(true).write("data: 1\n\n");
          vertx.setTimer(100, t1 -> {
            req.response().write("data: 2\n\n");
            vertx.setTimer(100, t2 -> req.response().end("data: 3\n\n"));
          });
        });
    int port = server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
        .actualPort();
    Heard h = exchange(client(cert), backend("https://localhost:" + port));
    assertThat(h.error()).isNull();
    assertThat(h.body()).isEqualTo("data: 1\n\ndata: 2\n\ndata: 3\n\n");
    assertThat(h.chunks()).as("three events 100 ms apart arrive as three chunks").isEqualTo(3);
  }

  @Test
  void anHttpsBackendWhoseCertificateNamesAnotherHostIsAConnectError() throws Exception {
    SelfSignedCertificate cert = SelfSignedCertificate.create("backend.example");
    int port = https(cert);
    UpstreamClient client = client(cert); // trusted, but issued to another name
    Backend backend = backend("https://localhost:" + port);
    Throwable failed = onContext(() -> client.lease(backend, 2_000))
        .handle((lease, t) -> t).get(10, TimeUnit.SECONDS);
    assertThat(failed).as("the lease fails: the certificate does not name localhost").isNotNull();
  }

  /**
   * The connect timeout bounds the TLS handshake too (and resolving the host): a backend that accepts
   * and never answers fails the lease at the timeout, not at Netty's handshake limit of 10 s, and
   * gives its place in the pool back.
   */
  @Test
  void aTlsHandshakeThatNeverEndsFailsTheLeaseAtTheConnectTimeout() throws Exception {
    NetServer silent = vertx.createNetServer().connectHandler(socket -> { });
    int port = silent.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
        .actualPort();
    // one connection at most: had the first kept its place, the second lease would wait for it
    UpstreamClient client = new UpstreamClient(context,
        new UpstreamClient.Limits(1, TimeUnit.SECONDS.toNanos(60), -1, UpstreamClient.Trust.JDK));
    Backend backend = backend("https://localhost:" + port);
    for (int i = 0; i < 2; i++) {
      long start = System.nanoTime();
      Throwable failed = onContext(() -> client.lease(backend, 300)).handle((lease, t) -> t).get(10, TimeUnit.SECONDS);
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      assertThat(failed).as("lease %d", i).isInstanceOf(ConnectTimeoutException.class)
          .hasMessageContaining("took longer than 300 ms");
      assertThat(ms).as("lease %d, ms", i).isBetween(250L, 5_000L);
    }
  }

  @Test
  void informationalResponsesAreSkipped() throws Exception {
    int port = raw("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        + "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    Heard h = exchange(client(null), backend("http://127.0.0.1:" + port));
    assertThat(h.status()).isEqualTo(200);
    assertThat(h.body()).isEqualTo("ok");
    assertThat(h.reusable()).isTrue();
  }

  @Test
  void aBackendThatSaysConnectionCloseIsNotReused() throws Exception {
    int port = raw("HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2\r\n\r\nok");
    Heard h = exchange(client(null), backend("http://127.0.0.1:" + port));
    assertThat(h.body()).isEqualTo("ok");
    assertThat(h.reusable()).isFalse();
  }

  @Test
  void aBodyCutShortIsAnError() throws Exception {
    int port = raw("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly a part", true);
    Heard h = exchange(client(null), backend("http://127.0.0.1:" + port));
    assertThat(h.status()).isEqualTo(200);
    assertThat(h.error()).as("the connection closed before the 100 bytes came").isNotNull();
    assertThat(h.body()).as("what came before the cut was handed on first").isEqualTo("only a part");
  }

  @Test
  void whatOneReadBringsIsHandedOnAsOneChunk() throws Exception {
    // Three events the backend wrote at once (as after a stall) leave in one write to the client,
    // not three: a loop that fell behind catches up instead of paying a system call per event.
    int port = raw("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        + "9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n9\r\ndata: 3\n\n\r\n0\r\n\r\n");
    Heard h = exchange(client(null), backend("http://127.0.0.1:" + port));
    assertThat(h.body()).isEqualTo("data: 1\n\ndata: 2\n\ndata: 3\n\n");
    assertThat(h.chunks()).isEqualTo(1);
    assertThat(h.reusable()).isTrue();
  }

  @Test
  void aConnectionPausedByTheLastChunkOfAResponseReadsAgainForTheNextExchange() throws Exception {
    // The client's write queue can fill with the last chunk of a response: the exchange pauses the
    // read and then ends. That pause was the exchange's: the connection goes back to the pool
    // reading, or the next exchange on it would never hear its answer.
    int[] connections = {0};
    HttpServer server = vertx.createHttpServer()
        .connectionHandler(c -> connections[0]++)
        .requestHandler(req -> req.response().end("ok"));
    int port = server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
        .actualPort();
    UpstreamClient client = client(null);
    Backend backend = backend("http://127.0.0.1:" + port);
    Heard paused = exchange(client, backend, Pause.ON_CONTENT);
    assertThat(paused.reusable()).isTrue();
    Heard next = exchange(client, backend, Pause.NEVER);
    assertThat(next.error()).isNull();
    assertThat(next.body()).isEqualTo("ok");
    // A pause that comes once the response has ended (a hedged answer committed when it completes,
    // whose held bytes fill the client's write queue) is ignored: nothing is left to hold back.
    Heard pausedAtTheEnd = exchange(client, backend, Pause.ON_END);
    assertThat(pausedAtTheEnd.reusable()).isTrue();
    Heard after = exchange(client, backend, Pause.NEVER);
    assertThat(after.error()).isNull();
    assertThat(after.body()).isEqualTo("ok");
    assertThat(connections[0]).as("every exchange reused the first one's connection").isEqualTo(1);
  }

  @Test
  void aBodyThatEndsAtTheBackendsCloseEndsTheExchangeAndTheConnection() throws Exception {
    // HTTP/1.1 with neither a length nor chunks: the body ends when the backend closes. It is a
    // complete answer, and its connection is not given back to the pool.
    int port = raw("HTTP/1.1 200 OK\r\n\r\nall of it", true);
    Heard h = exchange(client(null), backend("http://127.0.0.1:" + port));
    assertThat(h.error()).isNull();
    assertThat(h.body()).isEqualTo("all of it");
    assertThat(h.reusable()).isFalse();
  }

  @Test
  void aResponseThatEndsWhilePausedIsHeardWholeThoughTheBackendClosedMeanwhile() {
    // A slow client paused the read; the backend then sent the rest and closed (Connection: close,
    // or a body that ends at the close). Decoded while paused, the rest waits for the client: the
    // close must not throw it away and fail an answer that arrived whole.
    for (String head : List.of("HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n",
        "HTTP/1.0 200 OK\r\n\r\n")) {
      UpstreamResponseDecoder decoder = new UpstreamResponseDecoder(new HttpDecoderConfig());
      EmbeddedChannel ch = new EmbeddedChannel();
      UpstreamConnection conn = new UpstreamConnection(ch, decoder);
      ch.pipeline().addLast(decoder, new HttpRequestEncoder(), conn);
      StringBuilder body = new StringBuilder();
      List<Object> ends = new ArrayList<>();
      conn.send(new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/"), Unpooled.EMPTY_BUFFER,
          new UpstreamConnection.Listener() {
            @Override
            public void onHead(HttpResponse r) {}

            @Override
            public void onContent(Buffer chunk) {
              body.append(chunk.toString());
              if (body.length() == 5) {
                conn.pause(); // the client's write queue is full
              }
            }

            @Override
            public void onEnd(boolean reusable) {
              ends.add(reusable);
            }

            @Override
            public void onError(Throwable cause) {
              ends.add(cause);
            }
          });
      ch.writeInbound(Unpooled.copiedBuffer(head + "12345", StandardCharsets.US_ASCII));
      ch.writeInbound(Unpooled.copiedBuffer("67890", StandardCharsets.US_ASCII));
      ch.close();
      assertThat(ends).as(head).isEmpty();
      conn.resume(); // the client drained
      assertThat(body.toString()).as(head).isEqualTo("1234567890");
      assertThat(ends).as(head).containsExactly(false);
      ch.finishAndReleaseAll();
    }
  }

  // ---- helpers

  private UpstreamClient client(SelfSignedCertificate trusted) throws Exception {
    GatewayConfig config = ConfigLoader.parse("backends: [{url: \"http://127.0.0.1:1\"}]\n", name -> null);
    return new UpstreamClient(context, UpstreamClient.limits(config, 1,
        trusted == null ? UpstreamClient.Trust.JDK : new UpstreamClient.Trust.Certificates(new File(trusted.certificatePath()))));
  }

  private Backend backend(String url) throws Exception {
    GatewayConfig config = ConfigLoader.parse("backends: [{url: \"" + url + "\"}]\n", name -> null);
    return new Backend(config.backends().get(0), 0, false);
  }

  private int https(SelfSignedCertificate cert) throws Exception {
    HttpServer server = vertx.createHttpServer(new HttpServerOptions().setSsl(true)
        .setKeyCertOptions(cert.keyCertOptions()))
        .requestHandler(req -> req.response().end("over tls"));
    return server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
        .actualPort();
  }

  /** A server that answers the first request of each connection with {@code bytes}, exactly. */
  private int raw(String bytes) throws Exception {
    return raw(bytes, false);
  }

  private int raw(String bytes, boolean thenClose) throws Exception {
    NetServer server = vertx.createNetServer().connectHandler(socket -> {
      boolean[] answered = {false};
      socket.handler(in -> {
        if (!answered[0]) {
          answered[0] = true;
          socket.write(Buffer.buffer(bytes));
          if (thenClose) {
            socket.close();
          }
        }
      });
    });
    return server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
        .actualPort();
  }

  /** One GET on a leased connection, heard to its end or error; the lease given back as the connection says. */
  private Heard exchange(UpstreamClient client, Backend backend) throws Exception {
    return exchange(client, backend, Pause.NEVER);
  }

  /** When the listener pauses the connection, as a client whose write queue is full makes it do. */
  private enum Pause { NEVER, ON_CONTENT, ON_END }

  private Heard exchange(UpstreamClient client, Backend backend, Pause pause) throws Exception {
    CompletableFuture<Heard> heard = new CompletableFuture<>();
    context.runOnContext(v -> client.lease(backend, 2_000).onComplete(ar -> {
      if (ar.failed()) {
        heard.complete(new Heard(0, null, 0, false, ar.cause()));
        return;
      }
      UpstreamClient.Lease lease = ar.result();
      HttpRequest head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/");
      head.headers().set(HttpHeaderNames.HOST, backend.authority());
      StringBuilder body = new StringBuilder();
      int[] status = {0};
      int[] chunks = {0};
      lease.connection().send(head, Unpooled.EMPTY_BUFFER, new UpstreamConnection.Listener() {
        @Override
        public void onHead(HttpResponse r) {
          status[0] = r.status().code();
        }

        @Override
        public void onContent(Buffer chunk) {
          body.append(chunk.toString());
          chunks[0]++;
          if (pause == Pause.ON_CONTENT) {
            lease.connection().pause();
          }
        }

        @Override
        public void onEnd(boolean reusable) {
          if (pause == Pause.ON_END) {
            lease.connection().pause();
          }
          lease.release(reusable);
          heard.complete(new Heard(status[0], body.toString(), chunks[0], reusable, null));
        }

        @Override
        public void onError(Throwable cause) {
          lease.release(false);
          heard.complete(new Heard(status[0], body.toString(), chunks[0], false, cause));
        }
      });
    }));
    return heard.get(10, TimeUnit.SECONDS);
  }

  private <T> CompletableFuture<T> onContext(java.util.function.Supplier<io.vertx.core.Future<T>> call) {
    CompletableFuture<T> result = new CompletableFuture<>();
    context.runOnContext(v -> call.get().onComplete(ar -> {
      if (ar.succeeded()) {
        result.complete(ar.result());
      } else {
        result.completeExceptionally(ar.cause());
      }
    }));
    return result;
  }
}
