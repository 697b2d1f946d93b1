package io.llmproxy.server;

import static io.llmproxy.testing.ResponseBodies.sseData;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.ResponseBodies;
import io.llmproxy.testing.RawClient;
import io.llmproxy.testing.RawClient.Raw;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The HTTP/1.1 front door under protocol edge cases (framing, pipelining, {@code Expect}, methods,
 * header and target oddities, encodings): what the client gets back, and what the backend sees.
 * The expectations come from SPEC §4 and §9 (bad input gets a 4xx in OpenAI's error shape, never a
 * 500; the body crosses unchanged but for the mapped model) and from RFC 9110/9112 where they say
 * MUST, which nginx and Envoy follow. Most requests are written over raw sockets to control the bytes.
 */
class ProtocolEdgeTest {
  private static final String YAML = """
      backends:
        - url: "${SIM0}"
          name: a
          models: ["sim-model", "mapped-target"]
      routing:
        model_mapping: {"mapped": "mapped-target"}
      health_check: {enabled: false}
      """;
  private static final String CHAT = "/v1/chat/completions";
  private static final String VALID = "{\"model\":\"sim-model\",\"stream\":false,\"max_tokens\":2,"
      + "\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}";
  private static final ObjectMapper JSON = new ObjectMapper();

  private static TestGateway gw;

  @BeforeAll
  static void start() {
    gw = TestGateway.start(YAML, SimulatorOptions.defaults()
        .withTtft(Duration.ofMillis(2)).withItl(Duration.ofMillis(1)).withTokens(3));
  }

  @AfterAll
  static void stop() {
    if (gw != null) {
      gw.close();
    }
  }

  // ---- chunked request bodies

  /**
   * A body sent with {@code Transfer-Encoding: chunked} (no Content-Length), cut inside a multi-byte
   * UTF-8 character, with a chunk extension and a trailer, reaches the backend byte for byte.
   */
  @Test
  void aChunkedBodyReachesTheBackendByteIdentical() throws IOException {
    byte[] body = ("{ \"model\" : \"sim-model\",\n  \"stream\":false, \"max_tokens\":2,\n"
        + "  \"messages\":[{\"role\":\"user\",\"content\":\"h\u00e9llo \u4e16\u754c \ud83d\ude42 \\u00e9\"}] }\n")
        .getBytes(StandardCharsets.UTF_8);
    int cut = indexOf(body, "\u4e16".getBytes(StandardCharsets.UTF_8)) + 1; // inside the 3-byte character
    int before = gw.posts(0).size();
    try (Conn c = new Conn()) {
      c.send(head("POST", CHAT, "Transfer-Encoding: chunked", "Connection: close"));
      c.send(chunk(body, 0, cut, ";ext=1"));
      c.send(chunk(body, cut, body.length - 7, ""));
      c.send(chunk(body, body.length - 7, body.length, ""));
      c.send(ascii("0\r\nX-Trailer: t\r\n\r\n"));
      Raw r = c.read();

      assertThat(r.status()).as(r.text()).isEqualTo(200);
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("a");
    }
    assertThat(gw.posts(0)).hasSize(before + 1);
    RequestRecord seen = gw.posts(0).get(before);
    assertThat(seen.body()).isEqualTo(body);
    assertFramedAs(seen, body.length);
  }

  /**
   * A streaming request sent chunked: the backend sees the client's bytes with only the mapped model
   * spliced in (SPEC §5), and the SSE answer streams back to its {@code [DONE]}.
   */
  @Test
  void aChunkedStreamingBodyIsForwardedWithOnlyTheModelMappedAndTheStreamComesBack() throws IOException {
    String text = "{\"model\":\"mapped\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        + "\"messages\":[{\"role\":\"user\",\"content\":\"\u00e7a va? \ud83d\ude00\"}]}";
    byte[] body = text.getBytes(StandardCharsets.UTF_8);
    byte[] expected = text.replace("\"model\":\"mapped\"", "\"model\":\"mapped-target\"").getBytes(StandardCharsets.UTF_8);
    int before = gw.posts(0).size();
    try (Conn c = new Conn()) {
      c.send(head("POST", CHAT, "Transfer-Encoding: chunked", "Connection: close"));
      for (int from = 0; from < body.length; from += 9) {
        c.send(chunk(body, from, Math.min(body.length, from + 9), ""));
      }
      c.send(ascii("0\r\n\r\n"));
      Raw r = c.read();

      assertThat(r.status()).as(r.text()).isEqualTo(200);
      assertThat(r.header("content-type")).startsWith("text/event-stream");
      assertThat(sseData(r.text())).isNotEmpty().last().isEqualTo("[DONE]");
    }
    RequestRecord seen = gw.posts(0).get(before);
    assertThat(seen.model()).isEqualTo("mapped-target");
    assertThat(new String(seen.body(), StandardCharsets.UTF_8)).isEqualTo(new String(expected, StandardCharsets.UTF_8));
    assertThat(seen.body()).isEqualTo(expected);
    assertFramedAs(seen, expected.length);
  }

  // ---- Expect: 100-continue, pipelining, HEAD

  /** RFC 9110 §10.1.1: a body that fits is invited with 100 Continue; the Expect stays on the client's hop. */
  @Test
  void expectContinueGets100BeforeTheBodyAndTheBackendSeesNoExpect() throws IOException {
    byte[] body = VALID.getBytes(StandardCharsets.UTF_8);
    int before = gw.posts(0).size();
    try (Conn c = new Conn()) {
      c.send(head("POST", CHAT, "Content-Type: application/json", "Expect: 100-continue",
          "Content-Length: " + body.length, "Connection: close"));
      Raw cont = c.read(); // nothing of the body sent yet: this must come first

      assertThat(cont.status()).isEqualTo(100);
      c.send(body);
      Raw r = c.read();
      assertThat(r.status()).as(r.text()).isEqualTo(200);
      assertThat(JSON.readTree(r.body()).path("choices").size()).isEqualTo(1);
    }
    RequestRecord seen = gw.posts(0).get(before);
    assertThat(seen.headers()).doesNotContainKey("expect");
    assertThat(seen.body()).isEqualTo(body);
  }

  /**
   * Three requests written back to back before reading (RFC 9112 §9.3.2): a stream, a body that is
   * not JSON, and a plain call. Each is answered, in order, on the one connection; only the two
   * valid ones reach the backend, in order.
   */
  @Test
  void pipelinedRequestsAreAllAnsweredInOrder() throws IOException {
    String stream = "{\"model\":\"sim-model\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        + "\"messages\":[{\"role\":\"user\",\"content\":\"one\"}]}";
    int before = gw.posts(0).size();
    try (Conn c = new Conn()) {
      ByteArrayOutputStream all = new ByteArrayOutputStream();
      all.write(post(stream, "x-request-id: p1"));
      all.write(post("{", "x-request-id: p2"));
      all.write(post(VALID, "x-request-id: p3", "Connection: close"));
      c.send(all.toByteArray());

      Raw first = c.read();
      Raw second = c.read();
      Raw third = c.read();
      assertThat(first.header("x-request-id")).isEqualTo("p1");
      assertThat(first.status()).isEqualTo(200);
      assertThat(sseData(first.text())).last().isEqualTo("[DONE]");
      assertThat(second.header("x-request-id")).isEqualTo("p2");
      assertThat(assertOpenAiError(second, 400).path("code").asText()).isEqualTo("invalid_request_error");
      assertThat(third.header("x-request-id")).isEqualTo("p3");
      assertThat(third.status()).isEqualTo(200);
      assertThat(JSON.readTree(third.body()).path("object").asText()).isEqualTo("chat.completion");
      assertThat(c.closedByPeer()).as("closed after the request that asked for it").isTrue();
    }
    List<RequestRecord> posts = gw.posts(0);
    assertThat(posts.subList(before, posts.size())).extracting(r -> r.header("x-request-id"))
        .containsExactly("p1", "p3");
  }

  /**
   * HEAD on a POST-only route is a 405 with no body (RFC 9110 §9.3.2), so the next response on the
   * connection is framed right; nothing reaches the backend.
   */
  @Test
  void headOnChatCompletionsIs405WithoutABodyAndTheConnectionStaysUsable() throws IOException {
    int before = gw.posts(0).size();
    try (Conn c = new Conn()) {
      c.send(ascii("HEAD " + CHAT + " HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      Raw head = c.readHead();
      Raw health = c.read();

      assertThat(head.status()).isEqualTo(405);
      assertThat(head.header("content-type")).startsWith("application/json");
      assertThat(health.status()).isEqualTo(200);
      assertThat(health.text()).isEqualTo("{\"status\":\"ok\"}");
    }
    assertThat(gw.posts(0)).hasSize(before);
  }

  /** RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405 response". */
  @Test
  void a405NamesTheAllowedMethodInAllow() {
    Response r = gw.client.get(CHAT);

    assertThat(r.status()).isEqualTo(405);
    assertThat(r.header("allow")).isNotNull().contains("POST");
  }

  // ---- header and request-line limits

  /**
   * Thousands of small header lines over the 64 KiB header limit (Netty counts the block, not the
   * lines): the gateway's own 431 in OpenAI's shape, and the connection closes rather than hangs.
   */
  @Test
  void tooManyHeaderLinesGet431AndTheConnectionCloses() throws IOException {
    StringBuilder lines = new StringBuilder();
    for (int i = 0; i < 8000; i++) {
      // 10 bytes a line as Netty counts them (without the CRLF): 80,000 in all
      lines.append(String.format(Locale.ROOT, "X-H%04d: v\r\n", i));
    }
    int before = gw.posts(0).size();
    try (Conn c = new Conn()) {
      c.send(ascii("POST " + CHAT + " HTTP/1.1\r\nHost: x\r\n" + lines + "Content-Length: " + VALID.length()
          + "\r\n\r\n" + VALID));
      Raw r = c.read();

      assertThat(assertOpenAiError(r, 431).path("code").asText()).isEqualTo("headers_too_large");
      assertThat(r.header("connection")).isEqualTo("close");
      assertThat(c.closedByPeer()).isTrue();
    }
    assertThat(gw.posts(0)).hasSize(before);
  }

  /**
   * The gateway admits request lines and header blocks up to 64 KiB; a backend with smaller limits
   * (Vert.x's defaults, 4 KiB and 8 KiB, here) refuses them, and that refusal is the backend's own
   * 4xx, which goes back unchanged (SPEC §4): not a 5xx, and not retried.
   */
  @Test
  void aTargetOrHeadersTheBackendRefusesGetTheBackends4xxUnchanged() throws IOException {
    StringBuilder headers = new StringBuilder();
    for (int i = 0; i < 100; i++) {
      headers.append("X-H").append(i).append(": ").append("v".repeat(300)).append("\r\n");
    }
    String[][] cases = {
        {"POST " + CHAT + "?q=" + "x".repeat(10_000) + " HTTP/1.1\r\nHost: x\r\n", "414"},
        {"POST " + CHAT + " HTTP/1.1\r\nHost: x\r\n" + headers, "431"}};
    for (String[] k : cases) {
      try (Conn c = new Conn()) {
        c.send(ascii(k[0] + "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " + VALID.length()
            + "\r\n\r\n" + VALID));
        Raw r = c.read();

        assertThat(r.status()).as(r.statusLine()).isEqualTo(Integer.parseInt(k[1]));
        assertThat(r.header("x-llmproxy-backend")).as("the backend's answer").isEqualTo("a");
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("1");
      }
    }
    // and the gateway serves on
    assertThat(gw.client.post(CHAT, VALID).status()).isEqualTo(200);
  }

  // ---- request smuggling: ambiguous framing

  /**
   * Framings that two HTTP parsers could read differently (RFC 9112 §6.1, §6.3) are refused with a
   * 400 in OpenAI's shape and the connection is closed, so no byte of the body is ever read as a
   * second request: the request hidden in each body never reaches the backend.
   */
  @Test
  void ambiguousFramingGets400AndCloseAndNothingIsSmuggled() throws IOException {
    String smuggled = "POST /v1/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: " + VALID.length() + "\r\n\r\n" + VALID;
    String chunked = Integer.toHexString(smuggled.length()) + "\r\n" + smuggled + "\r\n0\r\n\r\n";
    String[] requests = {
        // CL.TE: both lengths
        "POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
        // two different Content-Length values
        "POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + VALID.length() + "\r\nContent-Length: 2\r\n\r\n"
            + VALID + smuggled,
        // a Transfer-Encoding whose last coding is not chunked: the length cannot be known (§6.3, MUST 400)
        "POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" + smuggled,
        "POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n" + chunked,
        // whitespace between a field name and the colon (§5.1, MUST 400)
        "POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\n{}" + smuggled};
    int before = gw.posts(0).size();
    for (String request : requests) {
      try (Conn c = new Conn()) {
        c.send(ascii(request));
        Raw r = c.read();

        assertThat(assertOpenAiError(r, 400).path("code").asText()).as(request).isEqualTo("invalid_request_error");
        assertThat(r.header("connection")).as(request).isEqualTo("close");
        assertThat(c.closedByPeer()).as(request).isTrue();
      }
    }
    assertThat(gw.posts(0)).hasSize(before);
    assertThat(gw.sim(0).requests()).noneMatch(r -> r.path().contains("smuggled"));
  }

  // ---- bodies that never complete

  /** A chunked body with a chunk size that is not hex, or chunk data not followed by CRLF. */
  private static final String[] BAD_CHUNKS = {"zz\r\n" + VALID + "\r\n0\r\n\r\n",
      Integer.toHexString(10) + "\r\n" + VALID.substring(0, 10) + "XX" + VALID.substring(10) + "\r\n0\r\n\r\n"};

  /**
   * A malformed chunked body: the connection closed, nothing upstream, and it counts as a 400, not
   * as a client that left. (Vert.x closes the connection itself, before an answer written then
   * would be flushed: nginx answers 400 here.)
   */
  @Test
  void aMalformedChunkedBodyIsCountedAsABadRequestAndNeverReachesTheBackend() throws IOException {
    int before = gw.posts(0).size();
    double bad400 = requests("400");
    double gone = requests("499");
    for (String bad : BAD_CHUNKS) {
      try (Conn c = new Conn()) {
        c.send(head("POST", CHAT, "Content-Type: application/json", "Transfer-Encoding: chunked"));
        c.send(ascii(bad));
        Raw r = c.readOrNull();
        if (r != null) {
          assertThat(r.status()).as(r.statusLine()).isEqualTo(400);
        }
        assertThat(c.closedByPeer()).as("the connection ends: " + bad).isTrue();
      }
    }
    await().atMost(Duration.ofSeconds(3)).until(() -> requests("400") >= bad400 + BAD_CHUNKS.length);
    assertThat(requests("499")).isEqualTo(gone);
    assertThat(gw.posts(0)).hasSize(before);
  }

  /**
   * A client that declares more body than it sends and then goes (full close, half close, or a chunked
   * body without its last chunk): the backend never sees the request, the gateway counts a 499 and
   * no 5xx, and a half-closed client gets the connection closed rather than left hanging.
   */
  @Test
  void aBodyCutShortByTheClientNeverReachesTheBackend() throws IOException {
    int before = gw.posts(0).size();
    double gone = requests("499");
    double fivexx = requests("5");
    try (Conn c = new Conn()) { // full close
      c.send(head("POST", CHAT, "Content-Type: application/json", "Content-Length: 500"));
      c.send(ascii(VALID));
    }
    try (Conn c = new Conn()) { // chunked, never ended
      c.send(head("POST", CHAT, "Content-Type: application/json", "Transfer-Encoding: chunked"));
      c.send(chunk(VALID.getBytes(StandardCharsets.US_ASCII), 0, VALID.length(), ""));
    }
    try (Conn c = new Conn()) { // half close: still reading
      c.send(head("POST", CHAT, "Content-Type: application/json", "Content-Length: 500"));
      c.send(ascii(VALID));
      c.socket.shutdownOutput();
      Raw r = c.readOrNull();
      if (r != null) {
        assertThat(r.status()).as(r.statusLine()).isBetween(400, 499);
      }
      assertThat(c.closedByPeer()).isTrue();
    }

    await().atMost(Duration.ofSeconds(3)).until(() -> requests("499") >= gone + 3);
    assertThat(requests("5")).as("5xx answers").isEqualTo(fivexx);
    assertThat(gw.posts(0)).hasSize(before);
    assertThat(gw.gateway.router().backends()).allMatch(b -> b.inflight() == 0);
  }

  // ---- encodings

  /** RFC 8259 §8.1: JSON is UTF-8. Bytes that are not get a 400 that says so, and go nowhere. */
  @Test
  void nonUtf8BytesInTheBodyGet400SayingSo() {
    byte[][] bodies = {
        bytes("{\"model\":\"sim-model\",\"messages\":[{\"role\":\"user\",\"content\":\"", 0xFF, 0xFE, "\"}]}"),
        bytes("{\"model\":\"sim-model", 0xC3, "\",\"messages\":[]}"), // a 2-byte sequence cut short
        bytes("{\"model\":\"sim-model\",\"", 0x80, "\":1}")}; // a lone continuation byte in a key
    int before = gw.posts(0).size();
    for (byte[] body : bodies) {
      Response r = gw.client.send(HttpMethod.POST, CHAT, Buffer.buffer(body), "content-type", "application/json");

      assertThat(r.status()).as(r.text()).isEqualTo(400);
      JsonNode error = assertOpenAiError(r.status(), r.header("content-type"), r.text());
      assertThat(error.path("code").asText()).isEqualTo("invalid_request_error");
      assertThat(error.path("message").asText()).contains("UTF-8");
    }
    assertThat(gw.posts(0)).hasSize(before);
  }

  /**
   * RFC 8259 §8.1 lets a parser ignore a byte order mark; when it does, the model is still mapped at
   * the right offsets and every other byte, the mark included, crosses unchanged.
   */
  @Test
  void aBodyWithAUtf8ByteOrderMarkIsMappedAtTheRightOffsets() {
    String json = "{\"model\":\"mapped\",\"stream\":false,\"max_tokens\":2,\"messages\":[]}";
    byte[] body = concat(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, json.getBytes(StandardCharsets.UTF_8));
    byte[] expected = concat(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF},
        json.replace("\"mapped\"", "\"mapped-target\"").getBytes(StandardCharsets.UTF_8));
    int before = gw.posts(0).size();
    Response r = gw.client.send(HttpMethod.POST, CHAT, Buffer.buffer(body), "content-type", "application/json");

    assertThat(r.status()).as(r.text()).isEqualTo(200);
    assertThat(gw.posts(0).get(before).body()).isEqualTo(expected);
  }

  /**
   * JSON exchanged between systems must be UTF-8 (RFC 8259 §8.1). Jackson would read UTF-16 by
   * itself but report no byte offsets for it, so the model could not be mapped in place: the body is
   * refused rather than sent with the client's model name.
   */
  @Test
  void aUtf16BodyIsRefusedSoItIsNeverForwardedUnmapped() {
    for (Charset utf16 : List.of(StandardCharsets.UTF_16LE, StandardCharsets.UTF_16)) {
      byte[] body = "{\"model\":\"mapped\",\"stream\":false,\"max_tokens\":2}".getBytes(utf16);
      int before = gw.posts(0).size();
      Response r = gw.client.send(HttpMethod.POST, CHAT, Buffer.buffer(body), "content-type", "application/json");

      assertThat(r.status()).isEqualTo(400);
      assertThat(assertOpenAiError(r.status(), r.header("content-type"), r.text()).path("message").asText())
          .contains("UTF-8");
      assertThat(gw.posts(0)).hasSize(before);
    }
  }

  /**
   * RFC 9110 §5.5: a field value's obs-text bytes are opaque data and cross unchanged; RFC 9112 §5.2:
   * an obs-fold is refused or replaced by spaces before the message is forwarded.
   */
  @Test
  void obsTextCrossesUnchangedAndObsFoldIsNeverForwarded() throws IOException {
    int before = gw.posts(0).size();
    try (Conn c = new Conn()) {
      c.send(latin1("POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Latin: caf\u00e9\r\n"
          + "X-Fold: one\r\n two\r\nConnection: close\r\nContent-Length: " + VALID.length() + "\r\n\r\n" + VALID));
      Raw r = c.read();

      if (r.status() == 400) {
        assertOpenAiError(r, 400);
        assertThat(gw.posts(0)).hasSize(before);
        return;
      }
      assertThat(r.status()).isEqualTo(200);
    }
    RequestRecord seen = gw.posts(0).get(before);
    assertThat(seen.header("x-latin")).as("one char per byte, as received").isEqualTo("caf\u00e9");
    assertThat(seen.header("x-fold")).doesNotContain("\r", "\n").isEqualTo("one two");
  }

  /**
   * RFC 3986 allows no raw byte over 0x7F in a target. Passed on, it would go upstream re-encoded as
   * UTF-8 (0xE9 as 0xC3 0xA9: another path), so it is refused, as Envoy does.
   */
  @Test
  void aRawNonAsciiByteInTheTargetIsRefused() throws IOException {
    int before = gw.posts(0).size();
    try (Conn c = new Conn()) {
      c.send(latin1("POST /v1/caf\u00e9 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
          + "Content-Length: " + VALID.length() + "\r\n\r\n" + VALID));
      Raw r = c.read();

      assertThat(assertOpenAiError(r, 400).path("message").asText()).contains("percent-encode");
    }
    assertThat(gw.posts(0)).hasSize(before);
  }

  // ---- versions, Host, odd targets

  /** HTTP/1.0 needs no Host (RFC 9112 §3.2): served, the backend gets its own Host, and the connection closes. */
  @Test
  void http10WithoutHostIsServedAndTheConnectionCloses() throws IOException {
    int before = gw.posts(0).size();
    try (Conn c = new Conn()) {
      c.send(ascii("POST " + CHAT + " HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " + VALID.length()
          + "\r\n\r\n" + VALID));
      Raw r = c.read();

      assertThat(r.statusLine()).startsWith("HTTP/1.");
      assertThat(r.status()).isEqualTo(200);
      assertThat(JSON.readTree(r.body()).path("object").asText()).isEqualTo("chat.completion");
      assertThat(c.closedByPeer()).as("no keep-alive asked for").isTrue();
    }
    RequestRecord seen = gw.posts(0).get(before);
    assertThat(seen.header("host")).isEqualTo(gw.sim(0).url().substring("http://".length()));
    assertThat(seen.body()).isEqualTo(VALID.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * HTTP/1.0 has no chunked coding: a response of unknown length (a stream) to a client that asked
   * for keep-alive can only end by closing the connection, and says so; it closes as soon as the
   * last event is out, not at the keep-alive timeout.
   */
  @Test
  void http10KeepAliveStreamEndsByClosingTheConnection() throws IOException {
    String stream = VALID.replace("\"stream\":false", "\"stream\":true");
    try (RawClient c = new RawClient(gw.port(), 2_000)) { // a read waiting longer fails the test
      c.send(ascii("POST " + CHAT + " HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
          + "Content-Length: " + stream.length() + "\r\n\r\n" + stream));
      Raw r = c.read(); // no length and no chunks: the body is what comes before the end of the connection

      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("content-type")).startsWith("text/event-stream");
      assertThat(r.header("connection")).isEqualToIgnoringCase("close");
      assertThat(r.header("transfer-encoding")).isNull();
      assertThat(sseData(r.text())).last().isEqualTo("[DONE]");
    }
  }

  /** A response of known length to an HTTP/1.0 keep-alive client leaves the connection open for the next request. */
  @Test
  void http10KeepAliveWithAKnownLengthKeepsTheConnection() throws IOException {
    try (RawClient c = new RawClient(gw.port(), 5_000)) {
      for (int i = 0; i < 2; i++) {
        c.send(ascii("POST " + CHAT + " HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
            + "Content-Length: " + VALID.length() + "\r\n\r\n" + VALID));
        Raw r = c.read();

        assertThat(r.status()).isEqualTo(200);
        assertThat(r.complete()).isTrue();
        assertThat(r.header("connection")).isEqualToIgnoringCase("keep-alive");
      }
    }
  }

  /**
   * RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
   * request message that lacks a Host header field and to any request message that contains more
   * than one Host header field line". nginx and Envoy do.
   */
  @Test
  void http11WithoutHostOrWithTwoHostsGets400() throws IOException {
    int before = gw.posts(0).size();
    for (String hostLines : new String[] {"", "Host: x\r\nHost: y\r\n"}) {
      try (Conn c = new Conn()) {
        c.send(ascii("POST " + CHAT + " HTTP/1.1\r\n" + hostLines + "Content-Type: application/json\r\nConnection: close\r\n"
            + "Content-Length: " + VALID.length() + "\r\n\r\n" + VALID));
        Raw r = c.read();

        assertOpenAiError(r, 400);
      }
    }
    assertThat(gw.posts(0)).hasSize(before);
  }

  /**
   * A passthrough path that a backend normalising it would resolve elsewhere ({@code /v1/../sleep})
   * never reaches the backend; dots inside a segment are just a name.
   */
  @Test
  void dotSegmentsAndEncodedSlashesInThePathGet400AndNeverReachTheBackend() throws IOException {
    int before = gw.posts(0).size();
    for (String target : new String[] {"/v1/../sleep", "/v1/%2e%2E/sleep", "/v1/./chat/completions", "/v1/.%2e",
        "/v1/files/..%2fsleep", "/v1/files/a%2Fb", "/v1/files/a%5cb", "/generate/.."}) {
      try (Conn c = new Conn()) {
        c.send(ascii("POST " + target + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + "Content-Length: " + VALID.length() + "\r\n\r\n" + VALID));
        Raw r = c.read();

        assertThat(assertOpenAiError(r, 400).path("message").asText()).as(target).contains("'..' segment");
      }
    }
    assertThat(gw.posts(0)).hasSize(before);
    assertThat(GatewayVerticle.hasDotSegmentOrEncodedSlash("/v1/files/file-abc.jsonl")).isFalse();
    assertThat(GatewayVerticle.hasDotSegmentOrEncodedSlash("/v1/files/.../x")).isFalse();
    assertThat(GatewayVerticle.hasDotSegmentOrEncodedSlash("/v1/files/%2e%2e%2e")).isFalse();
    assertThat(GatewayVerticle.hasDotSegmentOrEncodedSlash("/v1/files/x%2")).isFalse();
    assertThat(GatewayVerticle.hasDotSegmentOrEncodedSlash("/v1/..")).isTrue();
  }

  /** Targets in authority form, asterisk form, or without the leading slash: a 4xx in OpenAI's shape, not a 500. */
  @Test
  void oddRequestTargetsGetAnOpenAiShaped4xx() throws IOException {
    String[] requests = {
        "CONNECT gw.example:443 HTTP/1.1\r\nHost: gw.example:443\r\nConnection: close\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "POST v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " + VALID.length()
            + "\r\n\r\n" + VALID};
    int before = gw.posts(0).size();
    for (String request : requests) {
      try (Conn c = new Conn()) {
        c.send(ascii(request));
        Raw r = c.read();

        assertThat(r.status()).as(request).isBetween(400, 499);
        assertOpenAiError(r, r.status());
      }
    }
    assertThat(gw.posts(0)).hasSize(before);
  }

  // ---- helpers

  /** One raw client connection to the gateway. */
  private static final class Conn extends RawClient {
    Conn() throws IOException {
      super(gw.port(), 5000); // a read timeout fails a test if the gateway never answers
    }
  }

  /** Asserts OpenAI's error shape and the status; returns the {@code error} object. */
  private static JsonNode assertOpenAiError(Raw r, int status) throws IOException {
    assertThat(r.status()).as(r.statusLine() + " " + r.text()).isEqualTo(status);
    return assertOpenAiError(r.status(), r.header("content-type"), r.text());
  }

  private static JsonNode assertOpenAiError(int status, String contentType, String body) {
    assertThat(status).as(body).isBetween(400, 599).isNotEqualTo(500);
    return ResponseBodies.assertOpenAiError(contentType, body);
  }

  /** The backend got the body with a framing that matches it. */
  private static void assertFramedAs(RequestRecord seen, int length) {
    String te = seen.header("transfer-encoding");
    String cl = seen.header("content-length");
    assertThat(te != null && cl != null).as("both Transfer-Encoding and Content-Length upstream").isFalse();
    if (cl != null) {
      assertThat(cl).isEqualTo(Integer.toString(length));
    }
  }

  /** The sum of {@code llmproxy_requests_total} over statuses starting with {@code statusPrefix}. */
  private static double requests(String statusPrefix) {
    double sum = 0;
    for (String line : gw.gateway.metrics().scrape().split("\n")) {
      if (line.startsWith("llmproxy_requests_total{") && line.contains("status=\"" + statusPrefix)) {
        sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return sum;
  }

  private static byte[] head(String method, String path, String... headers) {
    StringBuilder sb = new StringBuilder(method + " " + path + " HTTP/1.1\r\nHost: gw\r\n");
    for (String h : headers) {
      sb.append(h).append("\r\n");
    }
    return ascii(sb.append("\r\n").toString());
  }

  private static byte[] post(String body, String... headers) {
    String[] all = new String[headers.length + 2];
    all[0] = "Content-Type: application/json";
    all[1] = "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length;
    System.arraycopy(headers, 0, all, 2, headers.length);
    return concat(head("POST", CHAT, all), body.getBytes(StandardCharsets.UTF_8));
  }

  private static byte[] chunk(byte[] body, int from, int to, String extension) {
    return concat(ascii(Integer.toHexString(to - from) + extension + "\r\n"),
        java.util.Arrays.copyOfRange(body, from, to), ascii("\r\n"));
  }

  private static byte[] ascii(String s) {
    return s.getBytes(StandardCharsets.US_ASCII);
  }

  private static byte[] latin1(String s) {
    return s.getBytes(StandardCharsets.ISO_8859_1);
  }

  /** Strings (as UTF-8) and single bytes (as ints), concatenated. */
  private static byte[] bytes(Object... parts) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (Object p : parts) {
      if (p instanceof Integer i) {
        b.write(i);
      } else {
        b.writeBytes(((String) p).getBytes(StandardCharsets.UTF_8));
      }
    }
    return b.toByteArray();
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      b.writeBytes(p);
    }
    return b.toByteArray();
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    throw new AssertionError("not found");
  }
}
