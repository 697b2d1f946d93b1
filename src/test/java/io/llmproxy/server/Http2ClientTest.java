package io.llmproxy.server;

import static io.llmproxy.testing.TestGateway.await;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Event;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.StreamResetException;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetServer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Clients on HTTP/2 (cleartext, prior knowledge): requests share one connection; a request the
 * gateway refuses before reading its body ends only its own stream, with the same OpenAI error an
 * HTTP/1.1 client gets, while the connection goes on serving; and a client that cancels one stream
 * (RST_STREAM, its connection left open) has the upstream request aborted as a disconnect does.
 */
class Http2ClientTest {
  private static final String CHAT = "/v1/chat/completions";
  private static final String YAML = """
      backends:
        - url: "${SIM0}"
          name: a
          models: ["sim-model"]
      limits: {max_body_size: 1KiB, client_body_timeout: 1s}
      health_check: {enabled: false}
      """;

  private TestGateway gw;
  private HttpClientAgent http2;
  private TestClient client;
  private final AtomicInteger connections = new AtomicInteger();

  @BeforeEach
  void start() {
    gw = TestGateway.start(YAML, SimulatorOptions.defaults()
        .withTtft(Duration.ofMillis(5)).withItl(Duration.ofMillis(1)).withTokens(2));
    http2 = gw.vertx.httpClientBuilder()
        .with(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false)
            .setDefaultHost("127.0.0.1").setDefaultPort(gw.port()))
        .with(new PoolOptions().setHttp2MaxSize(1))
        .withConnectHandler(c -> connections.incrementAndGet())
        .build();
    client = new TestClient(http2, gw.vertx.getOrCreateContext());
  }

  @AfterEach
  void stop() {
    await(http2.close());
    gw.close();
  }

  private Response chat() {
    return client.post(CHAT, TestClient.chat("sim-model", false));
  }

  private static void assertTooLarge(Response r) {
    assertThat(r.status()).isEqualTo(413);
    assertThat(r.header("content-type")).startsWith("application/json");
    assertThat(r.header("connection")).isNull();
    JsonObject error = r.json().getJsonObject("error");
    assertThat(error.getString("code")).isEqualTo("request_too_large");
    assertThat(error.getString("message")).contains("1024");
  }

  @Test
  void requestsShareOneConnection() {
    for (int i = 0; i < 3; i++) {
      Response r = chat();
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.json().getJsonArray("choices")).hasSize(1);
    }
    assertThat(connections).hasValue(1);
  }

  /** Zero-buffer streaming holds on HTTP/2 too: each event reaches the client before the next one is written. */
  @Test
  void aStreamArrivesEventByEvent() {
    gw.sim(0).options(gw.sim(0).options().withTtft(Duration.ofMillis(1)).withItl(Duration.ofMillis(1)).withTokens(4));
    for (int i = 0; i < 30; i++) { // class loading and the JIT first: a cold start is not batching
      client.stream(CHAT, TestClient.chat("sim-model", true));
    }
    gw.sim(0).options(gw.sim(0).options().withTtft(Duration.ofMillis(50)).withItl(Duration.ofMillis(50)).withTokens(8));

    Streamed s = client.stream(CHAT, TestClient.chat("sim-model", true));

    assertThat(s.status()).isEqualTo(200);
    assertThat(s.headers().get("content-type")).startsWith("text/event-stream");
    assertThat(s.events().stream().filter(Event::isContent)).hasSize(8);
    assertThat(s.heldBack(gw.posts(0).get(30).chunkSentAtNanos(), Duration.ofMillis(25)))
        .as("events held until the next was sent").isEmpty();
    assertThat(s.events().get(s.events().size() - 1).data()).isEqualTo("[DONE]");
    assertThat(connections).hasValue(1);
  }

  @Test
  void aDeclaredSizeOverTheCapGets413AndTheConnectionServesOn() {
    Response refused = client.send(HttpMethod.POST, CHAT, Buffer.buffer(BadInputTest.bigBody(2048)), "content-type", "application/json");

    assertTooLarge(refused);
    assertThat(chat().status()).isEqualTo(200);
    assertThat(connections).hasValue(1);
  }

  /** A body far over the HTTP/2 flow-control window: the client is asked to stop sending, and reads the 413. */
  @Test
  void aLargeBodyGets413AndTheConnectionServesOn() {
    Response refused = client.send(HttpMethod.POST, CHAT, Buffer.buffer(new byte[8 << 20]), "content-type", "application/json");

    assertTooLarge(refused);
    assertThat(chat().status()).isEqualTo(200);
    assertThat(connections).hasValue(1);
  }

  /** Sends {@code parts} of a chat request's body without content-length and never ends it; the answer. */
  private Response sendUnended(Buffer... parts) {
    Promise<Response> answer = Promise.promise();
    gw.vertx.getOrCreateContext().runOnContext(v -> http2
        .request(new RequestOptions().setMethod(HttpMethod.POST).setURI(CHAT).putHeader("content-type", "application/json"))
        .compose(req -> {
          req.setChunked(true);
          for (Buffer part : parts) {
            req.write(part);
          }
          return req.response();
        })
        .compose(resp -> resp.body().map(b -> Response.of(resp, b)))
        .onComplete(answer));
    return await(answer.future());
  }

  /** No content-length: the cap is found while the body arrives, and the stream still sending is stopped. */
  @Test
  void aBodyGrowingOverTheCapGets413AndTheConnectionServesOn() {
    Buffer part = Buffer.buffer(BadInputTest.bigBody(1000));
    Response refused = sendUnended(part, part); // over the cap

    assertTooLarge(refused);
    assertThat(chat().status()).isEqualTo(200);
    assertThat(connections).hasValue(1);
  }

  /** A body that stops arriving gets 408 on its own stream (reset, not the connection closed). */
  @Test
  void aBodyThatStopsArrivingGets408AndTheConnectionServesOn() {
    Response timedOut = sendUnended(Buffer.buffer("{\"model\":\"sim-mo"));

    assertThat(timedOut.status()).isEqualTo(408);
    assertThat(timedOut.json().getJsonObject("error").getString("code")).isEqualTo("request_timeout");
    assertThat(timedOut.header("connection")).isNull();
    assertThat(gw.posts(0)).isEmpty();
    assertThat(chat().status()).isEqualTo(200);
    assertThat(connections).hasValue(1);
  }

  /**
   * An HTTP/2 CONNECT (RFC 9113 §8.5: {@code :authority} and no {@code :path}) asks for a tunnel,
   * which the gateway is not: it gets a prompt 405 in OpenAI's shape on its own stream.
   */
  @Test
  void aConnectRequestGets405AndTheConnectionServesOn() {
    Promise<Response> answer = Promise.promise();
    gw.vertx.getOrCreateContext().runOnContext(v -> http2
        .request(new RequestOptions().setMethod(HttpMethod.CONNECT)) // :authority 127.0.0.1:port, the pool's one connection
        .compose(req -> req.send())
        .compose(resp -> resp.body().map(b -> Response.of(resp, b)))
        .timeout(5, TimeUnit.SECONDS)
        .onComplete(answer));
    Response r = await(answer.future());

    assertThat(r.status()).as(r.text()).isEqualTo(405);
    assertThat(r.header("content-type")).startsWith("application/json");
    assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("method_not_allowed");
    assertThat(gw.sim(0).requests()).noneMatch(seen -> seen.method().equals("CONNECT"));
    assertThat(chat().status()).isEqualTo(200);
    assertThat(connections).hasValue(1);
  }

  @Test
  void aBadRequestOnOneStreamLeavesTheOthersAlone() {
    Future<Response> slow = client.sendAsync(HttpMethod.POST, CHAT, Buffer.buffer(TestClient.chat("sim-model", false)),
        "content-type", "application/json");
    Response refused = client.send(HttpMethod.POST, CHAT, Buffer.buffer(BadInputTest.bigBody(4096)), "content-type", "application/json");

    assertTooLarge(refused);
    assertThat(await(slow).status()).isEqualTo(200);
    assertThat(connections).hasValue(1);
  }

  @Test
  void aStreamCancelledDuringPrefillAbortsTheUpstreamRequest() {
    assertCancelSeen(Duration.ofSeconds(2), 0);
  }

  @Test
  void aStreamCancelledMidStreamAbortsTheUpstreamRequest() {
    assertCancelSeen(Duration.ofMillis(10), 5);
  }

  private void assertCancelSeen(Duration ttft, int chunksFirst) {
    gw.sim(0).options(gw.sim(0).options().withTtft(ttft).withItl(Duration.ofMillis(20)).withTokens(500));
    HttpClientRequest req = client.open(CHAT, TestClient.chat("sim-model", true));
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 1
        && gw.posts(0).get(0).chunksSent() >= chunksFirst);

    long cancelledAt = System.nanoTime();
    req.reset();

    await().atMost(Duration.ofSeconds(2)).until(() -> gw.posts(0).get(0).clientDisconnected());
    RequestRecord aborted = gw.posts(0).get(0);
    assertThat((aborted.disconnectedAtNanos() - cancelledAt) / 1_000_000).as("ms until the backend saw the abort")
        .isLessThan(100);
    assertThat(aborted.completed()).isFalse();
    assertThat(aborted.chunksSent()).isGreaterThanOrEqualTo(chunksFirst).isLessThan(500);
    assertThat(gw.sim(0).connectionClosedAtNanos(aborted.connectionId())).isPresent();

    // the client's connection was only one stream short: it serves the next request
    gw.sim(0).options(gw.sim(0).options().withTtft(Duration.ZERO).withTokens(2));
    assertThat(chat().status()).isEqualTo(200);
    assertThat(connections).hasValue(1);
    List<RequestRecord> posts = gw.posts(0);
    assertThat(posts.get(1).connectionId()).isNotEqualTo(aborted.connectionId());
    assertThat(gw.gateway.metrics().scrape())
        .contains("llmproxy_cancelled_upstream_total{reason=\"client_disconnect\"} 1.0");
  }

  /**
   * HTTP/2 takes the headers HTTP/1 takes. A 12 KB one reaches the backend (the simulator, whose own
   * limit is 8 KiB, answers 431, passed through) and leaves the other streams alone; with Vert.x's
   * default of 8 KiB the gateway closed the whole connection for it.
   */
  @Test
  void aLargeHeaderIsTakenAndTheOtherStreamsCarryOn() {
    gw.sim(0).options(gw.sim(0).options().withItl(Duration.ofMillis(20)).withTokens(60));
    Future<Streamed> other = client.streamAsync(CHAT, TestClient.chat("sim-model", true));
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 1 && gw.posts(0).get(0).chunksSent() >= 3);
    Response big = client.post(CHAT, TestClient.chat("sim-model", false), "x-big", "x".repeat(12_000));
    assertThat(big.header("x-llmproxy-backend")).as("the request went through the gateway").isEqualTo("a");
    Streamed s = await(other);
    assertThat(s.status()).isEqualTo(200);
    assertThat(s.events()).last().extracting(Event::data).isEqualTo("[DONE]");
    assertThat(connections).hasValue(1);
  }

  /**
   * Cancelling a generation is a stream reset. A client that shares one connection among its users
   * cancels often: 250 cancels leave the connection, and the stream running on it, as they were
   * (Vert.x's guard against reset floods closed the connection at 200 in 30 s).
   */
  @Test
  void manyCancelsLeaveTheConnectionAndItsOtherStreams() {
    gw.sim(0).options(gw.sim(0).options().withTtft(Duration.ZERO).withItl(Duration.ofMillis(10)).withTokens(400));
    TestClient.OpenStream running = client.openStream(CHAT, TestClient.chat("sim-model", true));
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 1 && gw.posts(0).get(0).chunksSent() >= 1);
    gw.sim(0).options(gw.sim(0).options().withTtft(Duration.ofSeconds(30)));
    for (int i = 0; i < 250; i++) {
      HttpClientRequest cancelled = client.open(CHAT, TestClient.chat("sim-model", true));
      int seen = i + 2;
      await().atMost(Duration.ofSeconds(5)).pollInterval(Duration.ofMillis(1)).until(() -> gw.posts(0).size() >= seen);
      cancelled.reset();
    }
    await().atMost(Duration.ofSeconds(20)).until(() -> running.text().contains("data: [DONE]"));
    assertThat(gw.posts(0).get(0).completed()).isTrue();
    assertThat(connections).hasValue(1);
  }

  /**
   * A body the backend cuts off after the head went out cannot say so in-band: the stream is reset
   * with an error code. Reset with none (NO_ERROR), curl and nghttp2 read the truncated body as whole.
   */
  @Test
  void aBodyTheBackendCutsOffResetsTheStreamWithAnError() {
    NetServer cutting = gw.vertx.createNetServer().connectHandler(socket -> socket.handler(in -> {
      socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
          + "10\r\n{\"partial\": \"bod\r\n");
      socket.close();
    }));
    int port = await(cutting.listen(0, "127.0.0.1")).actualPort();
    try (TestGateway cut = TestGateway.start("""
            backends: [{url: "http://127.0.0.1:%d"}]
            routing: {retry: {enabled: false}}
            health_check: {enabled: false}
            """.formatted(port))) {
      HttpClientAgent h2 = cut.vertx.httpClientBuilder()
          .with(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false)
              .setDefaultHost("127.0.0.1").setDefaultPort(cut.port()))
          .build();
      try {
        Promise<Throwable> failed = Promise.promise();
        cut.vertx.getOrCreateContext().runOnContext(v -> h2.request(new RequestOptions().setMethod(HttpMethod.POST)
                .setURI(CHAT).putHeader("content-type", "application/json"))
            .compose(req -> req.send(Buffer.buffer(TestClient.chat("m", false))))
            .onSuccess(resp -> {
              resp.exceptionHandler(failed::tryComplete);
              resp.handler(b -> { });
              resp.endHandler(e -> failed.tryComplete(null));
            })
            .onFailure(failed::tryComplete));
        Throwable t = await(failed.future());
        assertThat(t).as("the body did not end cleanly").isInstanceOf(StreamResetException.class);
        assertThat(((StreamResetException) t).getCode()).as("the reset's error code").isNotZero();
      } finally {
        await(h2.close());
      }
    } finally {
      await(cutting.close());
    }
  }
}
