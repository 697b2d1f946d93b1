package io.llmproxy.proxy;

import static io.llmproxy.testing.ResponseBodies.sseData;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.ResponseBodies;
import io.llmproxy.testing.RawClient;
import io.llmproxy.testing.RawClient.Raw;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The upstream leg ({@link UpstreamConnection}, {@link UpstreamClient}, {@link UpstreamAttempt},
 * {@link Dispatch}) when a backend misbehaves at the HTTP/1.1 level. The backends here are raw
 * {@link ServerSocket}s that write exact bytes, so the framing is the test's; the client is a raw
 * socket too, so that successive requests share one client connection (one gateway event loop, one
 * upstream pool) and a truncated response is seen as such. What is expected follows SPEC §4 and
 * §6.3 (502/504 in OpenAI's shape, retries only before the first byte, one SSE error event after it,
 * a backend's 4xx unchanged, never a 500 of the gateway's own) and RFC 9112 as nginx and Envoy apply
 * it (a connection whose framing is in doubt is closed, never pooled).
 */
class UpstreamProtocolEdgeTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String CHAT = "/v1/chat/completions";
  private static final String OK_BODY = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[]}";
  private static final SimulatorOptions FAST =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(2);

  /** One raw backend, no retries: what the backend did is what the client gets. */
  private static final String SINGLE = """
      backends:
        - url: "${RAW}"
          name: raw
      routing:
        retry: {enabled: false}
      health_check: {enabled: false}
      """;

  /** Raw backend "raw" (weight 100) is always tried first; simulator "b" takes a retry. */
  private static final String RAW_THEN_SIM = """
      backends:
        - url: "${RAW}"
          name: raw
          weight: 100
        - url: "${SIM0}"
          name: b
      routing:
        retry: {enabled: true, max_retries: 2, initial_wait: 1ms, max_wait: 5ms}
      health_check: {enabled: false}
      """;

  // ---- control: the harness sees reuse when there is reuse

  /**
   * A clean keep-alive exchange: the second request on the same client connection goes out on the
   * same upstream connection. Every "not reused" assertion below is measured against this.
   */
  @Test
  void aCleanKeepAliveExchangeReusesTheUpstreamConnection() throws Exception {
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write(ok(OK_BODY));
          return Next.KEEP_ALIVE;
        });
        TestGateway gw = TestGateway.start(SINGLE, Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      for (int i = 0; i < 3; i++) {
        Raw r = client.post(TestClient.chat("m", false));
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.text()).isEqualTo(OK_BODY);
      }
      assertThat(raw.postConnections()).as("upstream connections that carried the 3 requests").isEqualTo(1);
      assertNoGateway500(gw);
    }
  }

  // ---- a body cut short

  /**
   * A body cut short by the backend's close, framed by {@code Content-Length: 100} (11 bytes came)
   * or chunked (no last chunk came). The head and the first bytes went to the client already (the
   * commit is at the first body byte), so the client must see a truncation: fewer bytes than the
   * Content-Length it was given, or no last chunk, and the connection closed; never a response that
   * looks complete. The next request is served on a new upstream connection.
   */
  @Test
  void aBodyCutShortIsNeverPassedOffAsComplete() throws Exception {
    String[] cut = {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"partial\":",
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n{\"partial\":\r\n"};
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          if (n % 2 == 1) {
            c.write(cut[n / 2]);
            c.socket.close();
            return Next.AWAIT_CLOSE;
          }
          c.write(ok(OK_BODY));
          return Next.KEEP_ALIVE;
        });
        TestGateway gw = TestGateway.start(SINGLE + NO_OUTLIERS, Map.of("RAW", raw.url()))) {
      for (int i = 0; i < cut.length; i++) {
        try (Client client = new Client(gw)) {
          Raw r = client.post(TestClient.chat("m", false));

          assertThat(r.status()).as(cut[i]).isEqualTo(200);
          assertThat(r.complete()).as("the client must see the response cut short: %s", r.text()).isFalse();
          assertThat("{\"partial\":").as("what the backend sent, or less").startsWith(r.text());
          if (r.header("content-length") != null) {
            assertThat(r.header("content-length")).isEqualTo("100");
          }
          assertThat(client.closedByPeer()).isTrue();
        }
        try (Client client = new Client(gw)) {
          Raw next = client.post(TestClient.chat("m", false));
          assertThat(next.status()).isEqualTo(200);
          assertThat(next.text()).isEqualTo(OK_BODY);
        }
        assertThat(raw.connectionOfPost(2 * i + 2)).isNotSameAs(raw.connectionOfPost(2 * i + 1));
      }
      assertNoGateway500(gw);
    }
  }

  /**
   * The head, then a close before any body byte: nothing reached the client, so it is a reset
   * before the response and is retried on the other backend (SPEC §6.3), which answers in full.
   */
  @Test
  void aHeadFollowedByACloseBeforeAnyBodyByteIsRetriedOnAnotherBackend() throws Exception {
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n");
          c.socket.close();
          return Next.AWAIT_CLOSE;
        });
        TestGateway gw = TestGateway.start(RAW_THEN_SIM, Map.of("RAW", raw.url()), FAST);
        Client client = new Client(gw)) {
      Raw r = client.post(TestClient.chat("m", false));

      assertThat(r.status()).isEqualTo(200);
      assertThat(r.complete()).isTrue();
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(JSON.readTree(r.body()).path("object").asText()).isEqualTo("chat.completion");
      assertThat(raw.posts()).isEqualTo(1);
      assertNoGateway500(gw);
    }
  }

  // ---- bytes past the end of a response

  /**
   * Bytes after the end of a response, on a keep-alive connection: a backend that counts its
   * Content-Length in characters, not UTF-8 bytes (one byte past the declared end), and a 204 that
   * carries a body anyway (RFC 9112 §6.3: a 204 ends at its head). Those bytes must never be read as
   * the start of the next response: the next request is answered correctly by its first attempt, on
   * a new connection, as nginx does when an upstream "sent more data than specified in
   * Content-Length" (it does not keep that connection).
   */
  @Test
  void bytesPastTheEndOfAResponseAreNeverReadAsTheNextResponse() throws Exception {
    String utf8 = "{\"content\":\"caf\u00e9\"}"; // 19 characters, 20 bytes
    byte[][] overlong = {
        concat(("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + utf8.length() + "\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII), utf8.getBytes(StandardCharsets.UTF_8)),
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello".getBytes(StandardCharsets.US_ASCII)};
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          if (n % 2 == 1) {
            c.write(overlong[n / 2]);
          } else {
            c.write(ok(OK_BODY));
          }
          return Next.KEEP_ALIVE;
        });
        TestGateway gw = TestGateway.start(SINGLE + NO_OUTLIERS, Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      for (int i = 0; i < overlong.length; i++) {
        Raw first = client.post(TestClient.chat("m", false));
        assertThat(first.status()).isIn(200, 204);

        Raw second = client.post(TestClient.chat("m", false));
        assertThat(second.status()).as("case %d: %s", i, second.text()).isEqualTo(200);
        assertThat(second.text()).isEqualTo(OK_BODY);
        assertThat(second.header("x-llmproxy-attempts")).isEqualTo("1");
        assertThat(raw.connectionOfPost(2 * i + 2)).as("case %d: the connection with stray bytes is not reused", i)
            .isNotSameAs(raw.connectionOfPost(2 * i + 1));
      }
      assertNoGateway500(gw);
    }
  }

  /**
   * Extra bytes that form a whole (forged) response right after the real one arrive when no request
   * waits for them: the gateway closes that connection, so the next request is served by its first
   * attempt on a new connection and never gets the forged answer. Ten rounds, as the close races the
   * next lease.
   */
  @Test
  void aConnectionClosedForAForgedResponseIsNeverLeasedToTheNextRequest() throws Exception {
    String forged = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 6\r\n\r\n\"EVIL\"";
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write(n % 2 == 1 ? ok(OK_BODY) + forged : ok(OK_BODY));
          return Next.KEEP_ALIVE;
        });
        TestGateway gw = TestGateway.start(SINGLE + NO_OUTLIERS, Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      for (int i = 0; i < 10; i++) {
        assertThat(client.post(TestClient.chat("m", false)).text()).isEqualTo(OK_BODY);
        Raw second = client.post(TestClient.chat("m", false));

        assertThat(second.status()).as("round %d: %s", i, second.text()).isEqualTo(200);
        assertThat(second.text()).isEqualTo(OK_BODY);
        assertThat(second.header("x-llmproxy-attempts")).isEqualTo("1");
        assertThat(raw.connectionOfPost(2 * i + 1).awaitClosedByGateway()).as("round %d: closed", i).isTrue();
        assertThat(raw.connectionOfPost(2 * i + 2)).isNotSameAs(raw.connectionOfPost(2 * i + 1));
      }
      assertNoGateway500(gw);
    }
  }

  // ---- a malformed chunked body mid-stream

  /**
   * An SSE stream whose second chunk has a size that is not hex, after the first event reached the
   * client: no retry (bytes went out), the stream ends with exactly one SSE error event and a proper
   * end, and the upstream connection is closed.
   */
  @Test
  void aMalformedChunkMidStreamEndsTheStreamWithOneErrorEventAndNoRetry() throws Exception {
    CountDownLatch firstEventSeen = new CountDownLatch(1);
    String event = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
              + Integer.toHexString(event.length()) + "\r\n" + event + "\r\n");
          if (!firstEventSeen.await(5, TimeUnit.SECONDS)) {
            throw new IOException("the client never saw the first event");
          }
          c.write("zz\r\n" + event + "\r\n0\r\n\r\n");
          return Next.KEEP_ALIVE;
        });
        TestGateway gw = TestGateway.start(RAW_THEN_SIM, Map.of("RAW", raw.url()), FAST);
        Client client = new Client(gw)) {
      client.send(request(TestClient.chat("m", true)));
      Raw head = client.readHead();
      assertThat(head.status()).isEqualTo(200);
      assertThat(head.header("transfer-encoding")).isEqualTo("chunked");
      String first = client.readChunk();
      assertThat(first).isEqualTo(event);
      firstEventSeen.countDown();
      Raw rest = client.readChunkedRest();

      assertThat(rest.complete()).as("the stream ends with its last chunk, not a cut").isTrue();
      List<String> data = sseData(first + rest.text());
      assertThat(data).hasSize(2);
      JsonNode error = JSON.readTree(data.get(1)).path("error");
      assertThat(error.path("code").asText()).isEqualTo("upstream_error");
      assertThat(head.header("x-llmproxy-attempts")).isEqualTo("1");
      assertThat(gw.posts(0)).as("no retry after bytes went to the client").isEmpty();
      assertThat(raw.connection(0).awaitClosedByGateway()).isTrue();
      assertNoGateway500(gw);
    }
  }

  // ---- heads the gateway cannot read

  /** Status lines and header lines that RFC 9112 does not allow, each answered to one request. */
  private static final String[] BAD_HEADS = {
      "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}",
      "ICY 200 OK\r\nContent-Length: 2\r\n\r\n{}",
      "HTTP/1.1 200 OK\r\n Leading: whitespace\r\nContent-Length: 2\r\n\r\n{}",
      "HTTP/1.1 200 OK\r\nX(Bad): v\r\nContent-Length: 2\r\n\r\n{}",
      "HTTP/1.1 200 OK\r\nX-Odd: a\rb\r\nContent-Length: 2\r\n\r\n{}",
      "HTTP/1.1 200 OK\r\nX-Odd: a\u0000b\r\nContent-Length: 2\r\n\r\n{}",
      "HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\n{}",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}"};

  /** Passive health off, so that the raw backend stays first in line however often it fails. */
  private static final String NO_OUTLIERS = "outlier_detection: {enabled: false}\n";

  /**
   * Before any byte reached the client, an unreadable head is a failed attempt: retried on the other
   * backend, which answers, and the connection it came on is closed.
   */
  @Test
  void anUnreadableStatusLineOrHeaderIsRetriedOnAnotherBackend() throws Exception {
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write(BAD_HEADS[n - 1]);
          return Next.AWAIT_CLOSE;
        });
        TestGateway gw = TestGateway.start(RAW_THEN_SIM + NO_OUTLIERS, Map.of("RAW", raw.url()), FAST);
        Client client = new Client(gw)) {
      for (int i = 0; i < BAD_HEADS.length; i++) {
        String bad = BAD_HEADS[i];
        Raw r = client.post(TestClient.chat("m", false));

        assertThat(r.status()).as(bad).isEqualTo(200);
        assertThat(r.header("x-llmproxy-backend")).as(bad).isEqualTo("b");
        assertThat(r.header("x-llmproxy-attempts")).as(bad).isEqualTo("2");
        assertThat(JSON.readTree(r.body()).path("object").asText()).isEqualTo("chat.completion");
        assertThat(raw.connection(i).awaitClosedByGateway()).as(bad).isTrue();
      }
      assertThat(raw.posts()).isEqualTo(BAD_HEADS.length);
      assertNoGateway500(gw);
    }
  }

  /** With nowhere to retry, an unreadable head is a 502 in OpenAI's shape, and nothing of it is forwarded. */
  @Test
  void anUnreadableHeadWithNoRetryIs502() throws Exception {
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write(BAD_HEADS[n - 1]);
          return Next.AWAIT_CLOSE;
        });
        TestGateway gw = TestGateway.start(SINGLE + NO_OUTLIERS, Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      for (String bad : BAD_HEADS) {
        Raw r = client.post(TestClient.chat("m", false));

        assertThat(r.status()).as(bad).isEqualTo(502);
        assertOpenAiError(r, 502, "upstream_error");
        assertThat(r.header("x-llmproxy-attempts")).as(bad).isEqualTo("1");
        assertThat(r.headers()).as(bad).doesNotContainKeys("x-odd", "x(bad)", "leading");
      }
      assertNoGateway500(gw);
    }
  }

  // ---- informational responses

  /**
   * {@code 100 Continue} and {@code 103 Early Hints} before the final response: the client gets the
   * final response in full, and the connection, whose framing stayed right, is reused.
   */
  @Test
  void informationalResponsesBeforeTheFinalOneAreSkippedAndTheConnectionStaysUsable() throws Exception {
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
              + ok(OK_BODY));
          return Next.KEEP_ALIVE;
        });
        TestGateway gw = TestGateway.start(SINGLE, Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      for (int i = 0; i < 2; i++) {
        Raw r = client.post(TestClient.chat("m", false));
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.text()).isEqualTo(OK_BODY);
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("1");
      }
      assertThat(raw.postConnections()).isEqualTo(1);
      assertNoGateway500(gw);
    }
  }

  // ---- connections that end with the response

  /**
   * Responses after which the connection may not carry another: {@code Connection: close} on a 200,
   * and HTTP/1.0 without keep-alive, both with the backend leaving its socket open. The body reaches
   * the client in full, the gateway closes the upstream connection itself, and the next request goes
   * out on a new one.
   */
  @Test
  void aResponseThatEndsTheConnectionIsCompleteAndTheConnectionIsNotReused() throws Exception {
    String[] heads = {"HTTP/1.1 200 OK\r\nConnection: close\r\n", "HTTP/1.0 200 OK\r\n"};
    for (String head : heads) {
      try (RawBackend raw = new RawBackend((c, req, n) -> {
            c.readBody(req);
            c.write(head + "Content-Type: application/json\r\nContent-Length: " + OK_BODY.length() + "\r\n\r\n" + OK_BODY);
            return Next.AWAIT_CLOSE; // the socket stays open: the gateway must close it
          });
          TestGateway gw = TestGateway.start(SINGLE, Map.of("RAW", raw.url()));
          Client client = new Client(gw)) {
        for (int i = 0; i < 2; i++) {
          Raw r = client.post(TestClient.chat("m", false));
          assertThat(r.status()).as(head).isEqualTo(200);
          assertThat(r.text()).as(head).isEqualTo(OK_BODY);
          assertThat(raw.connection(i).awaitClosedByGateway()).as(head).isTrue();
        }
        assertThat(raw.postConnections()).as(head).isEqualTo(2);
        assertNoGateway500(gw);
      }
    }
  }

  /** HTTP/1.0 without a Content-Length: the body ends at the close, and all of it reaches the client. */
  @Test
  void anHttp10BodyDelimitedByTheCloseReachesTheClientComplete() throws Exception {
    String body = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[],\"pad\":\"" + "x".repeat(50_000) + "\"}";
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body);
          c.socket.close();
          return Next.AWAIT_CLOSE;
        });
        TestGateway gw = TestGateway.start(SINGLE, Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      for (int i = 0; i < 2; i++) {
        Raw r = client.post(TestClient.chat("m", false));
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.complete()).isTrue();
        assertThat(r.text()).isEqualTo(body);
      }
      assertThat(raw.postConnections()).isEqualTo(2);
      assertNoGateway500(gw);
    }
  }

  // ---- a backend that goes quiet

  /**
   * Not streaming, the head arrives and then nothing: the idle timeout fires, the client gets a 504
   * in OpenAI's shape (nothing was sent yet), and the upstream connection is closed.
   */
  @Test
  void aHeadThenSilenceGets504AndTheUpstreamConnectionIsClosed() throws Exception {
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n");
          return Next.AWAIT_CLOSE;
        });
        TestGateway gw = TestGateway.start(SINGLE.replace("retry: {enabled: false}",
            "retry: {enabled: false}\n  timeouts: {idle: 300ms, total: 10s}"), Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      long start = System.nanoTime();
      Raw r = client.post(TestClient.chat("m", false));
      long ms = (System.nanoTime() - start) / 1_000_000;

      assertOpenAiError(r, 504, "upstream_timeout");
      assertThat(ms).as("ms until answered").isBetween(250L, 3_000L);
      assertThat(raw.connection(0).awaitClosedByGateway()).isTrue();
      assertNoGateway500(gw);
    }
  }

  // ---- an answer before the request body was read

  /**
   * The backend reads the head only and answers {@code 413} with {@code Connection: close} at once,
   * then stops sending (FIN) without reading the body. The client gets the backend's own 4xx
   * unchanged, not retried, and the gateway closes the upstream connection.
   */
  @Test
  void anEarlyErrorBeforeTheBodyWasReadReachesTheClientUnchanged() throws Exception {
    String tooLarge = "{\"error\":{\"message\":\"prompt too long\",\"type\":\"invalid_request_error\",\"param\":null,"
        + "\"code\":\"context_length_exceeded\"}}";
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.write("HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nConnection: close\r\n"
              + "Content-Length: " + tooLarge.length() + "\r\n\r\n" + tooLarge);
          c.socket.shutdownOutput();
          return Next.AWAIT_CLOSE;
        });
        TestGateway gw = TestGateway.start(RAW_THEN_SIM, Map.of("RAW", raw.url()), FAST);
        Client client = new Client(gw)) {
      String big = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"" + "x".repeat(2_000_000) + "\"}]}";
      Raw r = client.post(big);

      assertThat(r.status()).isEqualTo(413);
      assertThat(r.text()).isEqualTo(tooLarge);
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("1");
      assertThat(gw.posts(0)).isEmpty();
      assertThat(raw.connection(0).awaitClosedByGateway()).isTrue();
      assertNoGateway500(gw);
    }
  }

  /**
   * An early answer without {@code Connection: close} while the gateway is still writing a large
   * body: nginx ({@code request_body_sent}) and Envoy do not keep such a connection. Here the
   * backend reads nothing more from it; the next request must still be served, on a new connection.
   */
  @Test
  void anEarlyAnswerWhileTheBodyIsStillBeingWrittenDoesNotLeaveTheConnectionInThePool() throws Exception {
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          if (n == 1) {
            c.write("HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
            return Next.STOP_READING; // reads nothing more from this connection
          }
          c.readBody(req);
          c.write(ok(OK_BODY));
          return Next.KEEP_ALIVE;
        });
        TestGateway gw = TestGateway.start(SINGLE.replace("retry: {enabled: false}",
            "retry: {enabled: false}\n  timeouts: {total: 2s}"), Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      String big = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"" + "x".repeat(24_000_000) + "\"}]}";
      Raw r = client.post(big);
      assertThat(r.status()).isEqualTo(413);

      Raw next = client.post(TestClient.chat("m", false));
      assertThat(next.status()).as(next.text()).isEqualTo(200);
      assertThat(next.text()).isEqualTo(OK_BODY);
      assertThat(raw.postConnections()).isEqualTo(2);
      assertNoGateway500(gw);
    }
  }

  // ---- ambiguous framing (response smuggling)

  /**
   * Framings two parsers could read differently (RFC 9112 §6.1, §6.3; RFC 9110 §8.6): two
   * Content-Length values, Content-Length with Transfer-Encoding, and a Transfer-Encoding whose last
   * coding is not chunked. Each is refused with a 502 (as nginx does) before anything is forwarded,
   * so neither the response nor the one hidden behind it reaches the client.
   */
  @Test
  void ambiguousResponseFramingIsRefusedWith502() throws Exception {
    String hidden = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n\"HIDDEN\"";
    String chunked = Integer.toHexString(OK_BODY.length()) + "\r\n" + OK_BODY + "\r\n0\r\n\r\n";
    String[] framings = {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: " + (2 + hidden.length()) + "\r\n\r\n{}" + hidden,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: " + (chunked.length() + hidden.length())
            + "\r\n\r\n" + chunked + hidden,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n" + chunked};
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write(framings[n - 1]);
          return Next.AWAIT_CLOSE;
        });
        TestGateway gw = TestGateway.start(SINGLE + NO_OUTLIERS, Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      for (int i = 0; i < framings.length; i++) {
        Raw r = client.post(TestClient.chat("m", false));

        assertThat(r.status()).as(framings[i]).isEqualTo(502);
        assertOpenAiError(r, 502, "upstream_error");
        assertThat(r.text()).doesNotContain("HIDDEN", "chat.completion");
        assertThat(raw.connection(i).awaitClosedByGateway()).as(framings[i]).isTrue();
      }
      assertNoGateway500(gw);
    }
  }

  /** A header block over 64 KiB: a 502 in OpenAI's shape, without a hang, and the connection closed. */
  @Test
  void aHugeHeaderBlockGets502WithoutHanging() throws Exception {
    StringBuilder headers = new StringBuilder();
    for (int i = 0; i < 1_000; i++) {
      headers.append("X-Big-").append(i).append(": ").append("v".repeat(90)).append("\r\n"); // ~100 KB
    }
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write("HTTP/1.1 200 OK\r\n" + headers + "Content-Length: 2\r\n\r\n{}");
          return Next.KEEP_ALIVE;
        });
        TestGateway gw = TestGateway.start(SINGLE, Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      Raw r = client.post(TestClient.chat("m", false));

      assertOpenAiError(r, 502, "upstream_error");
      assertThat(raw.connection(0).awaitClosedByGateway()).isTrue();
      assertNoGateway500(gw);
    }
  }

  // ---- a reset

  /** A backend that resets each connection right after accepting it: retried on the other backend. */
  @Test
  void aResetRightAfterTheAcceptIsRetriedOnAnotherBackend() throws Exception {
    try (RawBackend raw = RawBackend.resetting();
        TestGateway gw = TestGateway.start(RAW_THEN_SIM, Map.of("RAW", raw.url()), FAST);
        Client client = new Client(gw)) {
      for (boolean stream : new boolean[] {false, true}) {
        client.send(request(TestClient.chat("m", stream)));
        Raw r = client.read();

        assertThat(r.status()).as("stream=%s", stream).isEqualTo(200);
        assertThat(r.complete()).isTrue();
        assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      }
      assertThat(gw.posts(0)).hasSize(2);
      assertNoGateway500(gw);
    }
  }

  // ---- an unsolicited protocol switch

  /**
   * A {@code 101 Switching Protocols} the gateway never asked for (it sends no Upgrade): not a
   * response the client can use, so a 502 in OpenAI's shape at once (Envoy answers 502 to a 101 it
   * did not ask for), and the next request is served on a new connection.
   */
  @Test
  void anUnsolicited101Gets502AtOnceAndTheConnectionIsNotReused() throws Exception {
    try (RawBackend raw = new RawBackend((c, req, n) -> {
          c.readBody(req);
          c.write(n == 1 ? "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" : ok(OK_BODY));
          return Next.KEEP_ALIVE;
        });
        TestGateway gw = TestGateway.start(SINGLE.replace("retry: {enabled: false}",
            "retry: {enabled: false}\n  timeouts: {total: 2s}"), Map.of("RAW", raw.url()));
        Client client = new Client(gw)) {
      long start = System.nanoTime();
      client.send(request(TestClient.chat("m", false)));
      Raw r = client.readOrNull();

      assertThat(r).as("an answer, not a cut").isNotNull();
      assertOpenAiError(r, 502, "upstream_error");
      assertThat((System.nanoTime() - start) / 1_000_000).as("ms until answered").isLessThan(1_500L);
      Raw next = client.post(TestClient.chat("m", false));
      assertThat(next.status()).isEqualTo(200);
      assertThat(next.text()).isEqualTo(OK_BODY);
      assertThat(raw.postConnections()).isEqualTo(2);
      assertNoGateway500(gw);
    }
  }

  // ---- helpers: assertions

  /** The metrics count the requests answered, and none of them was a 500. */
  private static void assertNoGateway500(TestGateway gw) {
    await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
      Scrape scrape = Scrape.of(gw);
      assertThat(scrape.value("llmproxy_requests_total")).as("requests counted").isPositive();
      assertThat(scrape.value("llmproxy_requests_total", "status", "500")).as("requests answered 500").isZero();
    });
  }

  private static JsonNode assertOpenAiError(Raw r, int status, String code) {
    assertThat(r.status()).as(r.statusLine() + " " + r.text()).isEqualTo(status);
    JsonNode error = ResponseBodies.assertOpenAiError(r.header("content-type"), r.text());
    assertThat(error.path("code").asText()).as(r.text()).isEqualTo(code);
    return error;
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      all.writeBytes(p);
    }
    return all.toByteArray();
  }

  private static String ok(String body) {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body;
  }

  private static byte[] request(String json) {
    byte[] body = json.getBytes(StandardCharsets.UTF_8);
    byte[] head = ("POST " + CHAT + " HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: "
        + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    all.writeBytes(head);
    all.writeBytes(body);
    return all.toByteArray();
  }

  // ---- helpers: the raw backend

  /** A request head as the raw backend read it. */
  record Head(String method, String target, Map<String, String> headers) {
    long contentLength() {
      String cl = headers.get("content-length");
      return cl == null ? 0 : Long.parseLong(cl.trim());
    }
  }

  /** What the raw backend does with a connection after answering. */
  enum Next {
    /** Reads the next request. */
    KEEP_ALIVE,
    /** Reads and drops everything until the gateway closes the connection (recorded). */
    AWAIT_CLOSE,
    /** Reads nothing more, and leaves the socket open. */
    STOP_READING
  }

  /** What the raw backend does with one POST on a connection. */
  @FunctionalInterface
  interface Script {
    Next answer(Upstream c, Head request, int n) throws Exception;
  }

  /**
   * A backend made of a {@link ServerSocket} on 127.0.0.1 port 0: each connection runs on a thread
   * of its own, its POSTs go to the script (numbered from 1 across connections), and a GET (the
   * gateway's model-list fetch) gets a 404 and a close. When the script is done with a connection,
   * it is read until the gateway closes it, which is recorded.
   */
  static final class RawBackend implements AutoCloseable {
    private final ServerSocket server;
    private final Script script;
    private final boolean reset;
    private final List<Upstream> connections = new CopyOnWriteArrayList<>();
    private final List<Socket> accepted = new CopyOnWriteArrayList<>();
    private final AtomicInteger posts = new AtomicInteger();
    /** The connection each POST came on, in order. */
    private final List<Upstream> postedOn = new CopyOnWriteArrayList<>();

    RawBackend(Script script) throws IOException {
      this(script, false);
    }

    private RawBackend(Script script, boolean reset) throws IOException {
      this.server = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
      this.script = script;
      this.reset = reset;
      Thread acceptor = new Thread(this::acceptLoop, "raw-backend-accept");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    /** A backend that resets every connection as soon as it is accepted. */
    static RawBackend resetting() throws IOException {
      return new RawBackend((c, req, n) -> Next.AWAIT_CLOSE, true);
    }

    String url() {
      return "http://127.0.0.1:" + server.getLocalPort();
    }

    int posts() {
      return posts.get();
    }

    /** Connections that carried at least one POST. */
    long postConnections() {
      return connections.size();
    }

    /** The connection the n-th POST (from 1) came on. */
    Upstream connectionOfPost(int n) {
      return postedOn.get(n - 1);
    }

    /** The i-th connection that carried a POST, once there is one. */
    Upstream connection(int i) {
      await().atMost(Duration.ofSeconds(5)).until(() -> connections.size() > i);
      return connections.get(i);
    }

    private void acceptLoop() {
      while (!server.isClosed()) {
        Socket s;
        try {
          s = server.accept();
        } catch (IOException e) {
          return;
        }
        accepted.add(s);
        if (reset) {
          try {
            s.setSoLinger(true, 0);
            s.close();
          } catch (IOException ignored) {
            // gone already
          }
          continue;
        }
        Thread t = new Thread(() -> serve(s), "raw-backend-conn");
        t.setDaemon(true);
        t.start();
      }
    }

    private void serve(Socket s) {
      Upstream c = null;
      try {
        c = new Upstream(s);
        Head head;
        boolean counted = false;
        while ((head = c.readHead()) != null) {
          if (!head.method().equals("POST")) {
            c.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            s.close();
            return;
          }
          if (!counted) {
            counted = true;
            connections.add(c);
          }
          postedOn.add(c);
          Next next = script.answer(c, head, posts.incrementAndGet());
          if (next == Next.STOP_READING) {
            return;
          }
          if (next == Next.AWAIT_CLOSE) {
            break;
          }
        }
        c.drainUntilClosed();
      } catch (Exception e) {
        if (c != null) {
          c.closed(!s.isClosed());
        }
      }
    }

    @Override
    public void close() throws IOException {
      server.close();
      for (Socket s : accepted) {
        s.close();
      }
    }
  }

  /** One connection from the gateway to the raw backend. */
  static final class Upstream {
    final Socket socket;
    private final InputStream in;
    private final OutputStream out;
    private final CountDownLatch ended = new CountDownLatch(1);
    private volatile boolean closedByGateway;

    Upstream(Socket socket) throws IOException {
      this.socket = socket;
      socket.setSoTimeout(20_000);
      this.in = new BufferedInputStream(socket.getInputStream());
      this.out = socket.getOutputStream();
    }

    /** The next request's head; null when the gateway closed the connection. */
    Head readHead() throws IOException {
      String line = RawClient.readLine(in);
      if (line == null) {
        closed(true);
        return null;
      }
      String[] parts = line.split(" ");
      Map<String, String> headers = new LinkedHashMap<>();
      String h;
      while ((h = RawClient.readLine(in)) != null && !h.isEmpty()) {
        int colon = h.indexOf(':');
        headers.put(h.substring(0, colon).trim().toLowerCase(Locale.ROOT), h.substring(colon + 1).trim());
      }
      return new Head(parts[0], parts[1], headers);
    }

    byte[] readBody(Head head) throws IOException {
      return in.readNBytes((int) head.contentLength());
    }

    void write(String latin1) throws IOException {
      write(latin1.getBytes(StandardCharsets.ISO_8859_1));
    }

    void write(byte[]... parts) throws IOException {
      ByteArrayOutputStream all = new ByteArrayOutputStream();
      for (byte[] p : parts) {
        all.writeBytes(p);
      }
      out.write(all.toByteArray());
      out.flush();
    }

    /** Reads and drops everything until the gateway closes the connection. */
    void drainUntilClosed() throws IOException {
      byte[] sink = new byte[65536];
      while (in.read(sink) >= 0) {
        // dropped
      }
      closed(true);
    }

    void closed(boolean byGateway) {
      closedByGateway = byGateway;
      ended.countDown();
    }

    /** True once the gateway has closed (or reset) this connection, within a few seconds. */
    boolean awaitClosedByGateway() throws InterruptedException {
      return ended.await(5, TimeUnit.SECONDS) && closedByGateway;
    }
  }

  // ---- helpers: the raw client

  /** One keep-alive client connection to the gateway (one event loop there, so one upstream pool). */
  static final class Client extends RawClient {
    Client(TestGateway gw) throws IOException {
      super(gw.port(), 8_000); // a read timeout fails a test if the gateway never answers
    }

    Raw post(String json) throws IOException {
      send(request(json));
      return read();
    }
  }
}
