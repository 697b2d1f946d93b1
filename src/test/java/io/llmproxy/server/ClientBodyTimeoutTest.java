package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.bucket4j.TimeMeter;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code limits.client_body_timeout}: a request whose body stops arriving is answered 408 and its
 * connection closed, instead of holding the connection, its buffer and its key's concurrency slot
 * for ever; a body that keeps coming, however slowly, is not cut.
 */
class ClientBodyTimeoutTest {
  private static final String KEY = "sk-llmproxy-body-timeout-001";
  private static final String BODY = TestClient.chat("sim-model", false);

  @TempDir
  Path dataDir;
  private TestGateway gw;

  @AfterEach
  void stop() {
    if (gw != null) {
      gw.close();
    }
  }

  private void start(String extra) {
    gw = TestGateway.start("""
        backends:
          - url: "${SIM0}"
            models: ["sim-model"]
        health_check: {enabled: false}
        limits: {client_body_timeout: 1s}
        data_dir: "${DATA}"
        %s
        """.formatted(extra), Map.of("DATA", dataDir.toString()), Clock.systemUTC(), TimeMeter.SYSTEM_NANOTIME,
        SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(2));
  }

  private static String head(String auth) {
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        + (auth == null ? "" : "Authorization: Bearer " + auth + "\r\n")
        + "Content-Length: " + BODY.length() + "\r\n\r\n";
  }

  /** What the gateway answered, when its first byte came, and when it closed the connection. */
  private record Answer(String text, long answeredAfterMs, long closedAfterMs) {}

  /**
   * Sends the head and the first ten bytes of the body, then nothing; reads until the gateway closes
   * (on HTTP/1.1 after a lingering close of up to 5 s, as nginx's, since the client might still send).
   */
  private Answer stallAfterTenBytes(String auth) throws IOException {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", gw.port()), 2000);
      s.setSoTimeout(10_000); // fails the test by a read timeout if the gateway never answers
      long sent = System.nanoTime();
      s.getOutputStream().write((head(auth) + BODY.substring(0, 10)).getBytes(StandardCharsets.US_ASCII));
      s.getOutputStream().flush();
      InputStream in = s.getInputStream();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      byte[] buf = new byte[4096];
      long answered = -1;
      int n;
      while ((n = in.read(buf)) >= 0) {
        if (answered < 0) {
          answered = (System.nanoTime() - sent) / 1_000_000;
        }
        got.write(buf, 0, n);
      }
      return new Answer(got.toString(StandardCharsets.US_ASCII), answered, (System.nanoTime() - sent) / 1_000_000);
    }
  }

  @Test
  void aBodyThatStopsArrivingGets408AndTheConnectionCloses() throws IOException {
    start("");
    Answer a = stallAfterTenBytes(null);

    assertThat(a.text()).startsWith("HTTP/1.1 408 ").contains("\"code\":\"request_timeout\"")
        .contains("limits.client_body_timeout");
    assertThat(a.answeredAfterMs()).as("ms until the answer").isBetween(900L, 3_000L);
    assertThat(a.closedAfterMs()).as("ms until the close").isLessThan(8_000L);
    assertThat(gw.posts(0)).as("nothing went upstream").isEmpty();
    assertThat(gw.gateway.metrics().scrape()).containsPattern("llmproxy_requests_total\\{[^}]*status=\"408\"[^}]*} 1.0");
  }

  @Test
  void aBodyThatKeepsComingSlowlyIsNotCut() throws IOException, InterruptedException {
    start("");
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", gw.port()), 2000);
      s.setSoTimeout(10_000);
      OutputStream out = s.getOutputStream();
      out.write(head(null).getBytes(StandardCharsets.US_ASCII));
      // five pieces 400 ms apart: 2 s for the whole body, never 1 s without a byte
      byte[] body = BODY.getBytes(StandardCharsets.US_ASCII);
      int piece = (body.length + 4) / 5;
      for (int from = 0; from < body.length; from += piece) {
        out.write(body, from, Math.min(piece, body.length - from));
        out.flush();
        if (from + piece < body.length) {
          Thread.sleep(400); // the client's pace, not a wait for the gateway
        }
      }
      byte[] buf = new byte[4096];
      int n = s.getInputStream().read(buf);
      assertThat(new String(buf, 0, n, StandardCharsets.US_ASCII)).startsWith("HTTP/1.1 200 ");
    }
    assertThat(gw.posts(0)).hasSize(1);
  }

  @Test
  void aStalledUploadGivesItsKeysConcurrencySlotBack() throws IOException {
    start("""
        auth: {enabled: true}
        api_keys:
          - {key: "%s", name: one-at-a-time, rate_limit: {max_concurrent: 1}}
        """.formatted(KEY));
    assertThat(stallAfterTenBytes(KEY).text()).startsWith("HTTP/1.1 408 ");

    Response next = gw.client.post("/v1/chat/completions", BODY, "authorization", "Bearer " + KEY);
    assertThat(next.status()).as(next.text()).isEqualTo(200);
  }

  @Test
  void aRefusedRequestWhoseBodyStopsIsAnsweredWithItsRefusalAndClosed() throws IOException {
    start("""
        auth: {enabled: true}
        api_keys:
          - {key: "%s", name: k}
        """.formatted(KEY));
    Answer a = stallAfterTenBytes("sk-llmproxy-unknown-000");

    assertThat(a.text()).startsWith("HTTP/1.1 401 ").contains("\"code\":\"invalid_api_key\"");
    assertThat(a.answeredAfterMs()).isBetween(900L, 3_000L);
  }
}
