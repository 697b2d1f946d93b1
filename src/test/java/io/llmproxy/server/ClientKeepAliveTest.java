package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpVersion;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code limits.client_keep_alive_timeout}: a client connection with no request in progress is
 * closed after it (on HTTP/2 too, after a cancelled stream), and one waiting on a long request is
 * not.
 */
class ClientKeepAliveTest {
  private TestGateway gw;

  @BeforeEach
  void start() {
    gw = TestGateway.start("""
        backends:
          - url: "${SIM0}"
            models: ["sim-model"]
        health_check: {enabled: false}
        limits: {client_keep_alive_timeout: 1s}
        """, SimulatorOptions.defaults().withTtft(Duration.ofMillis(2500)).withItl(Duration.ofMillis(1)).withTokens(3));
  }

  @AfterEach
  void stop() {
    gw.close();
  }

  /** Sends {@code request} and reads until the gateway closes the connection; returns what came and when. */
  private record Closed(String received, long afterMs) {}

  private Closed sendAndWaitForClose(String request) throws IOException {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", gw.port()), 2000);
      s.setSoTimeout(10_000); // fails the test by a read timeout if the connection is never closed
      long sent = System.nanoTime();
      s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      s.getOutputStream().flush();
      InputStream in = s.getInputStream();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      byte[] buf = new byte[4096];
      int n;
      while ((n = in.read(buf)) >= 0) {
        got.write(buf, 0, n);
      }
      return new Closed(got.toString(StandardCharsets.US_ASCII), (System.nanoTime() - sent) / 1_000_000);
    }
  }

  @Test
  void anIdleConnectionIsClosedAfterTheTimeout() throws IOException {
    Closed c = sendAndWaitForClose("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");

    assertThat(c.received()).startsWith("HTTP/1.1 200").contains("{\"status\":\"ok\"}");
    // checked once a second: between one and two timeouts after the answer
    assertThat(c.afterMs()).isBetween(1_000L, 3_500L);
  }

  /** A 2.5 s prefill on a 1 s timeout: no byte moves for longer than the timeout, and the stream completes. */
  @Test
  void aLongRequestKeepsItsConnection() {
    Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("sim-model", true));

    assertThat(s.status()).isEqualTo(200);
    assertThat(s.events()).last().extracting(TestClient.Event::data).isEqualTo("[DONE]");
    assertThat(gw.posts(0).get(0).completed()).isTrue();
  }

  /**
   * HTTP/2: a stream the client cancelled is no longer in progress, so its connection still closes
   * once idle (a cancelled stream must not keep it open for ever).
   */
  @Test
  void anHttp2ConnectionWithACancelledStreamIsClosedOnceIdle() {
    gw.sim(0).options(gw.sim(0).options().withTtft(Duration.ofSeconds(5)));
    AtomicInteger closed = new AtomicInteger();
    HttpClientAgent http2 = gw.vertx.httpClientBuilder()
        .with(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false)
            .setDefaultHost("127.0.0.1").setDefaultPort(gw.port()))
        .withConnectHandler(c -> c.closeHandler(v -> closed.incrementAndGet()))
        .build();
    try {
      HttpClientRequest req = new TestClient(http2, gw.vertx.getOrCreateContext())
          .open("/v1/chat/completions", TestClient.chat("sim-model", true));
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 1);
      long cancelledAt = System.nanoTime();
      req.reset();

      await().atMost(Duration.ofSeconds(5)).until(() -> closed.get() == 1);
      assertThat((System.nanoTime() - cancelledAt) / 1_000_000).isGreaterThanOrEqualTo(1_000L);
    } finally {
      TestGateway.await(http2.close());
    }
  }
}
