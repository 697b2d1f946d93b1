package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.ResponseBodies;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Bad input gets a clear 4xx with an OpenAI-shaped JSON error and never a 500 or a crash (SPEC §4,
 * §9), and never reaches a backend.
 */
class BadInputTest {
  private static final String YAML = """
      backends:
        - url: "${SIM0}"
          name: a
          models: ["sim-model", "mapped-target", "any-*"]
      routing:
        model_mapping: {"mapped": "mapped-target"}
      limits: {max_body_size: 1KiB}
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
        .withTtft(Duration.ofMillis(5)).withItl(Duration.ofMillis(1)).withTokens(2));
  }

  @AfterAll
  static void stop() {
    if (gw != null) {
      gw.close();
    }
  }

  private static long backendPosts() {
    return gw.sim(0).requests().stream().filter(r -> r.method().equals("POST")).count();
  }

  private static Response post(String body) {
    return gw.client.send(HttpMethod.POST, CHAT, Buffer.buffer(body));
  }

  /** Asserts a 4xx in the OpenAI error shape and returns the {@code error} object. */
  private static JsonNode assertOpenAiError(int status, String contentType, String body) {
    assertThat(status).as("status of %s", body).isBetween(400, 499);
    return ResponseBodies.assertOpenAiError(contentType, body);
  }

  private static JsonNode assertOpenAiError(Response r) {
    return assertOpenAiError(r.status(), r.header("content-type"), r.text());
  }

  /** A gateway error on a proxied route: shape, status, code, param; the backend saw nothing. */
  private static void assertRejected(String body, int status, String code, String param) {
    long before = backendPosts();
    Response r = post(body);

    assertThat(r.status()).as(body).isEqualTo(status);
    JsonNode error = assertOpenAiError(r);
    assertThat(error.path("code").asText()).isEqualTo(code);
    if (param == null) {
      assertThat(error.get("param").isNull()).as("param of %s", body).isTrue();
    } else {
      assertThat(error.path("param").asText()).isEqualTo(param);
    }
    assertThat(r.header("x-request-id")).isNotBlank();
    assertThat(r.header("x-llmproxy-backend")).isNull();
    assertThat(backendPosts()).as("the backend saw nothing of " + body).isEqualTo(before);
  }

  // ---- one case each

  @Test
  void malformedJson() {
    assertRejected("{\"model\":\"sim-model\",", 400, "invalid_request_error", null);
    assertRejected("{model: sim-model}", 400, "invalid_request_error", null);
    assertRejected(VALID + "}", 400, "invalid_request_error", null);
    assertRejected("not json at all", 400, "invalid_request_error", null);
  }

  @Test
  void jsonThatIsNotAnObject() {
    assertRejected("[" + VALID + "]", 400, "invalid_request_error", null);
    assertRejected("\"sim-model\"", 400, "invalid_request_error", null);
    assertRejected("42", 400, "invalid_request_error", null);
    assertRejected("null", 400, "invalid_request_error", null);
  }

  @Test
  void objectWithoutModel() {
    assertRejected("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400, "invalid_request_error", "model");
    assertRejected("{}", 400, "invalid_request_error", "model");
    assertRejected("{\"model\":null}", 400, "invalid_request_error", "model");
    assertRejected("{\"model\":\"\"}", 400, "invalid_request_error", "model");
    assertRejected("{\"options\":{\"model\":\"sim-model\"}}", 400, "invalid_request_error", "model");
  }

  @Test
  void modelOfTheWrongType() {
    assertRejected("{\"model\":42}", 400, "invalid_request_error", "model");
    assertRejected("{\"model\":[\"sim-model\"]}", 400, "invalid_request_error", "model");
    assertRejected("{\"model\":{\"name\":\"sim-model\"}}", 400, "invalid_request_error", "model");
    assertRejected("{\"model\":true}", 400, "invalid_request_error", "model");
  }

  @Test
  void streamOfTheWrongType() {
    assertRejected("{\"model\":\"sim-model\",\"stream\":\"yes\"}", 400, "invalid_request_error", "stream");
    assertRejected("{\"model\":\"sim-model\",\"stream\":1}", 400, "invalid_request_error", "stream");
    assertRejected("{\"model\":\"sim-model\",\"stream\":{}}", 400, "invalid_request_error", "stream");
  }

  @Test
  void emptyBody() {
    assertRejected("", 400, "invalid_request_error", null);
    assertRejected("   \n", 400, "invalid_request_error", null);
  }

  @Test
  void unknownModel() {
    assertRejected("{\"model\":\"no-such-model\"}", 404, "model_not_found", "model");
  }

  @Test
  void unknownPath() {
    Response r = gw.client.get("/foo");
    assertThat(r.status()).isEqualTo(404);
    assertOpenAiError(r);
    Response post = gw.client.post("/foo", VALID);
    assertThat(post.status()).isEqualTo(404);
    assertOpenAiError(post);
  }

  @Test
  void wrongMethod() {
    for (String path : List.of(CHAT, "/v1/completions", "/v1/embeddings")) {
      Response r = gw.client.get(path);
      assertThat(r.status()).as(path).isEqualTo(405);
      assertThat(assertOpenAiError(r).path("code").asText()).isEqualTo("method_not_allowed");
    }
    Response del = gw.client.send(HttpMethod.DELETE, CHAT, null);
    assertThat(del.status()).isEqualTo(405);
    assertOpenAiError(del);
  }

  /** The operations endpoints answer GET and HEAD (probes, scrapers); a write there is refused. */
  @Test
  void operationsEndpointsAreReadOnly() {
    for (String path : List.of("/health", "/ready", "/metrics")) {
      Response post = gw.client.post(path, "{}");
      assertThat(post.status()).as(path).isEqualTo(405);
      assertThat(post.header("allow")).isEqualTo("GET, HEAD");
      assertThat(assertOpenAiError(post).path("code").asText()).isEqualTo("method_not_allowed");
      Response head = gw.client.send(HttpMethod.HEAD, path, null);
      assertThat(head.status()).as(path).isEqualTo(200);
      assertThat(head.body().length()).isZero();
    }
  }

  // ---- the body size cap, over raw sockets to control framing

  /** A response read off a raw socket. */
  record Raw(int status, Map<String, String> headers, String body) {}

  private static Raw raw(byte[] request) throws IOException {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", gw.port()), 2000);
      s.setSoTimeout(5000);
      OutputStream out = s.getOutputStream();
      out.write(request);
      out.flush();
      return readResponse(s.getInputStream());
    }
  }

  private static Raw readResponse(InputStream in) throws IOException {
    String statusLine = readLine(in);
    // HTTP/1.0 when the request line could not be read, so its version is unknown
    assertThat(statusLine).as("status line").startsWith("HTTP/1.");
    int status = Integer.parseInt(statusLine.substring(9, 12));
    Map<String, String> headers = new LinkedHashMap<>();
    String line;
    while (!(line = readLine(in)).isEmpty()) {
      int colon = line.indexOf(':');
      headers.put(line.substring(0, colon).trim().toLowerCase(Locale.ROOT), line.substring(colon + 1).trim());
    }
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    if (headers.containsKey("content-length")) {
      body.write(in.readNBytes(Integer.parseInt(headers.get("content-length"))));
    } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
      int size;
      while ((size = Integer.parseInt(readLine(in).split(";")[0].trim(), 16)) > 0) {
        body.write(in.readNBytes(size));
        readLine(in);
      }
    } else {
      body.write(in.readAllBytes());
    }
    return new Raw(status, headers, body.toString(StandardCharsets.UTF_8));
  }

  private static String readLine(InputStream in) throws IOException {
    StringBuilder sb = new StringBuilder();
    int c;
    while ((c = in.read()) != '\n') {
      if (c < 0) {
        throw new IOException("connection closed after: " + sb);
      }
      if (c != '\r') {
        sb.append((char) c);
      }
    }
    return sb.toString();
  }

  /** A chat request body of exactly {@code size} bytes. */
  static String bigBody(int size) {
    String head = "{\"model\":\"sim-model\",\"messages\":[{\"role\":\"user\",\"content\":\"";
    String tail = "\"}]}";
    return head + "x".repeat(size - head.length() - tail.length()) + tail;
  }

  private static void assertTooLarge(Raw r) {
    assertThat(r.status()).isEqualTo(413);
    JsonNode error = assertOpenAiError(r.status(), r.headers().get("content-type"), r.body());
    assertThat(error.path("code").asText()).isEqualTo("request_too_large");
    assertThat(error.path("message").asText()).contains("1024");
  }

  @Test
  void oversizedBodyWithContentLength() throws IOException {
    long before = backendPosts();
    String body = bigBody(2048);
    Raw r = raw(("POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + "Content-Length: " + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));

    assertTooLarge(r);
    assertThat(backendPosts()).isEqualTo(before);
  }

  @Test
  void oversizedBodyChunked() throws IOException {
    long before = backendPosts();
    String body = bigBody(2048);
    // two chunks, the second over the cap; no last chunk, so the gateway has read every byte sent
    String request = "POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + "Transfer-Encoding: chunked\r\n\r\n"
        + Integer.toHexString(1000) + "\r\n" + body.substring(0, 1000) + "\r\n"
        + Integer.toHexString(1000) + "\r\n" + body.substring(1000, 2000) + "\r\n";
    Raw r = raw(request.getBytes(StandardCharsets.UTF_8));

    assertTooLarge(r);
    assertThat(backendPosts()).isEqualTo(before);
  }

  @Test
  void contentLengthOverTheCapIsRefusedBeforeTheBody() throws IOException {
    long before = backendPosts();
    // headers only: the answer must come without waiting for a body that never comes
    Raw r = raw(("POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + "Content-Length: 1000000000\r\n\r\n").getBytes(StandardCharsets.UTF_8));

    assertTooLarge(r);
    assertThat(backendPosts()).isEqualTo(before);
  }

  /**
   * curl sends {@code Expect: 100-continue} for bodies over 1 MiB; a body already known to be too
   * large must be refused at once (RFC 9110 §10.1.1), not invited.
   */
  @Test
  void expectContinueWithAContentLengthOverTheCapGets413NotContinue() throws IOException {
    Raw r = raw(("POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + "Content-Length: 40000000\r\nExpect: 100-continue\r\n\r\n").getBytes(StandardCharsets.UTF_8));

    assertTooLarge(r);
  }

  /** A client that writes its whole (large) body before reading the answer still gets the 413. */
  @Test
  void aLargeBodySentInFullStillGets413() {
    Response r = gw.client.send(HttpMethod.POST, CHAT, Buffer.buffer(new byte[8 << 20]),
        "content-type", "application/json");

    assertThat(r.status()).isEqualTo(413);
    assertThat(assertOpenAiError(r).path("code").asText()).isEqualTo("request_too_large");
  }

  /**
   * What the HTTP decoder refuses (a request line or headers over 64 KiB, bytes that are not HTTP)
   * gets the OpenAI error shape too, and the connection closes: its rest cannot be framed.
   */
  @Test
  void requestsTheDecoderRefusesGetOpenAiErrors() throws IOException {
    long before = backendPosts();
    Raw longLine = raw(("GET /v1/models?q=" + "x".repeat(70_000) + " HTTP/1.1\r\nHost: x\r\n\r\n")
        .getBytes(StandardCharsets.US_ASCII));
    Raw bigHeaders = raw(("POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nX-Big: " + "y".repeat(70_000)
        + "\r\nContent-Length: 2\r\n\r\n{}").getBytes(StandardCharsets.US_ASCII));
    Raw notHttp = raw("HELLO THERE\r\n\r\n".getBytes(StandardCharsets.US_ASCII));

    for (Object[] c : new Object[][] {{longLine, 414, "uri_too_long"}, {bigHeaders, 431, "headers_too_large"},
        {notHttp, 400, "invalid_request_error"}}) {
      Raw r = (Raw) c[0];
      assertThat(r.status()).isEqualTo(c[1]);
      assertThat(assertOpenAiError(r.status(), r.headers().get("content-type"), r.body()).path("code").asText())
          .isEqualTo(c[2]);
      assertThat(r.headers().get("connection")).isEqualTo("close");
    }
    assertThat(backendPosts()).isEqualTo(before);
  }

  /**
   * RFC 9112 §2.3: a request of a higher minor version of HTTP/1 is served as HTTP/1.1. Another major
   * version gets 505 and another protocol 400, OpenAI-shaped, and the connection closes (Vert.x by
   * itself answers each with an empty 501).
   */
  @Test
  void requestLinesOfOtherVersionsAreServedAsHttp11OrRefused() throws IOException {
    long before = backendPosts();
    Raw minor = raw(("POST " + CHAT + " HTTP/1.2\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
        + VALID.getBytes(StandardCharsets.UTF_8).length + "\r\nConnection: close\r\n\r\n" + VALID)
        .getBytes(StandardCharsets.UTF_8));
    assertThat(minor.status()).isEqualTo(200);
    assertThat(minor.body()).contains("chat.completion");
    assertThat(backendPosts()).isEqualTo(before + 1);

    for (String version : new String[] {"HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "FOO/1.1"}) {
      Raw r = raw(("POST " + CHAT + " " + version + "\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
          .getBytes(StandardCharsets.US_ASCII));
      boolean http = version.startsWith("HTTP/");
      assertThat(r.status()).as(version).isEqualTo(http ? 505 : 400);
      JsonNode err = ResponseBodies.assertOpenAiError(r.headers().get("content-type"), r.body());
      assertThat(err.path("code").asText()).isEqualTo(http ? "http_version_not_supported" : "invalid_request_error");
      assertThat(r.headers().get("connection")).isEqualTo("close");
    }
    assertThat(backendPosts()).isEqualTo(before + 1);
  }

  @Test
  void bodyJustUnderTheCapIsServed() {
    Response r = post(bigBody(1024));
    assertThat(r.status()).isEqualTo(200);
  }

  @Test
  void contentLengthThatIsNotANumber() throws IOException {
    Raw r = raw(("POST " + CHAT + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + "Content-Length: abc\r\nConnection: close\r\n\r\n" + VALID).getBytes(StandardCharsets.UTF_8));

    assertThat(r.status()).isBetween(400, 499);
  }

  // ---- garbage

  private static final String[] JSONISH = {
      "{", "}", "[", "]", ":", ",", " ", "\"", "\"model\"", "\"stream\"", "\"messages\"", "\"sim-model\"",
      "\"mapped\"", "\"any-x\"", "true", "false", "null", "0", "-1", "1e999", "0.5", "\"\\u0000\"",
      "\"\\ud800\"", "\"\\\\\"", "\\", "\"\u00e9\u4e2d\"", "\n", "/*", "NaN", "'"};

  private static byte[] garbage(Random rnd, int i) {
    byte[] valid = VALID.getBytes(StandardCharsets.UTF_8);
    switch (i % 5) {
      case 0 -> { // a truncation of a valid body
        return java.util.Arrays.copyOf(valid, rnd.nextInt(valid.length));
      }
      case 1 -> { // random bytes
        byte[] b = new byte[rnd.nextInt(300)];
        rnd.nextBytes(b);
        return b;
      }
      case 2 -> { // JSON-ish tokens
        StringBuilder sb = new StringBuilder();
        int n = 1 + rnd.nextInt(30);
        for (int k = 0; k < n; k++) {
          sb.append(JSONISH[rnd.nextInt(JSONISH.length)]);
        }
        return sb.toString().getBytes(StandardCharsets.UTF_8);
      }
      case 3 -> { // an object with a model and a random value for a random field
        String value = JSONISH[rnd.nextInt(JSONISH.length)];
        String field = rnd.nextBoolean() ? "stream" : rnd.nextBoolean() ? "model" : "max_tokens";
        String model = rnd.nextBoolean() ? "\"sim-model\"" : rnd.nextBoolean() ? "\"mapped\"" : "\"any-\\ud83d\"";
        return ("{\"model\":" + model + ",\"" + field + "\":" + value + "}").getBytes(StandardCharsets.UTF_8);
      }
      default -> { // a valid body with bytes flipped
        byte[] b = valid.clone();
        int flips = 1 + rnd.nextInt(3);
        for (int k = 0; k < flips; k++) {
          b[rnd.nextInt(b.length)] = (byte) rnd.nextInt(256);
        }
        return b;
      }
    }
  }

  /** A JSON object whose top-level model is a non-empty string, and stream absent, null or boolean. */
  private static boolean routable(byte[] body) {
    try {
      JsonNode n = JSON.readTree(body);
      if (n == null || !n.isObject()) {
        return false;
      }
      JsonNode model = n.get("model");
      JsonNode stream = n.get("stream");
      return model != null && model.isTextual() && !model.asText().isEmpty()
          && (stream == null || stream.isNull() || stream.isBoolean());
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  @Test
  void garbageNeverGets5xxAndNeverReachesTheBackend() {
    Random rnd = new Random(20240611L);
    List<String> problems = new ArrayList<>();
    int rejected = 0;
    for (int i = 0; i < 100; i++) {
      byte[] body = garbage(rnd, i);
      String shown = i + ": " + new String(body, StandardCharsets.UTF_8).replace("\n", "\\n");
      long before = backendPosts();
      Response r;
      try {
        r = gw.client.send(HttpMethod.POST, CHAT, Buffer.buffer(body), "content-type", "application/json");
      } catch (RuntimeException e) {
        problems.add(shown + " -> no response: " + e);
        continue;
      }
      long reached = backendPosts() - before;
      boolean viaBackend = r.header("x-llmproxy-backend") != null;
      if (r.status() >= 500) {
        problems.add(shown + " -> " + r.status() + " " + r.text());
      } else if (!viaBackend) {
        if (r.status() == 200) {
          problems.add(shown + " -> 200 without a backend");
        }
        try {
          assertOpenAiError(r);
        } catch (AssertionError e) {
          problems.add(shown + " -> " + r.status() + " not OpenAI-shaped: " + r.text());
        }
        if (reached != 0) {
          problems.add(shown + " -> rejected by the gateway, yet the backend saw it");
        }
        rejected++;
      } else if (!routable(body)) {
        problems.add(shown + " -> reached the backend (" + r.status() + ") although invalid");
      } else if (reached != 1) {
        problems.add(shown + " -> backend requests: " + reached);
      }
    }
    assertThat(problems).isEmpty();
    assertThat(rejected).as("most garbage is rejected").isGreaterThan(60);

    // still serving, and still scrapable with whatever model labels the garbage left behind
    Response ok = post(VALID);
    assertThat(ok.status()).isEqualTo(200);
    assertThat(ok.json().getJsonArray("choices")).hasSize(1);
    assertThat(gw.client.get("/metrics").status()).isEqualTo(200);
    assertThat(gw.client.get("/health").status()).isEqualTo(200);
  }

  @Test
  void afterBadInputAValidRequestIsServed() {
    post("{");
    post("");
    Response r = post(VALID);
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.header("x-llmproxy-backend")).isEqualTo("a");
    TestClient.Streamed s = gw.client.stream(CHAT, TestClient.chat("mapped", true));
    assertThat(s.status()).isEqualTo(200);
    assertThat(s.events()).last().extracting(TestClient.Event::data).isEqualTo("[DONE]");
  }
}
