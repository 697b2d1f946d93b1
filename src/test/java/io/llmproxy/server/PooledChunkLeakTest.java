package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.Logs;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.util.ResourceLeakDetector;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * What the backend sends is forwarded in pooled buffers ({@code UpstreamConnection}: the read's own
 * buffer, or a pooled copy of a small piece), and each one goes back to the pool once its write to
 * the client completed or failed. This checks that none is lost, on every path a chunk takes: a stream and a
 * body read one piece per read and several pieces per read, over HTTP/1.1 and HTTP/2; a hedge's
 * held chunks; a client that goes away mid-stream; and a client that stops reading, so that chunks
 * wait in its write queue, and then goes away.
 *
 * <p>Netty's leak detector, at its paranoid level while the test runs, tracks every buffer allocated
 * meanwhile and logs one that was garbage-collected unreleased. After the traffic, a buffer leaked on
 * purpose (the canary) is collected and reported: the collections that found it found any leak
 * older than it, so once the canary's report is in, every other report is too.
 */
class PooledChunkLeakTest {
  private static final String CANARY = "pooled-chunk-leak-test canary";
  /** Tokens of the fast backend's streams: paranoid leak detection makes each buffer costly. */
  private static final int FAST_TOKENS = 500;

  private ResourceLeakDetector.Level levelBefore;
  private ListAppender<ILoggingEvent> reports;
  private Logger leakLogger;
  private TestGateway gw;

  @BeforeEach
  void start() {
    // fast: no gap between tokens, so one read brings many events (gathered into one buffer);
    // slow: an event per read, 5 ms apart, long enough to be cut mid-way.
    gw = TestGateway.start("""
        backends:
          - {url: "${SIM0}", name: fast, models: ["fast-model"]}
          - {url: "${SIM1}", name: slow, models: ["slow-model"]}
          - {url: "${SIM2}", name: hedge-a, models: ["hedged-model"]}
          - {url: "${SIM3}", name: hedge-b, models: ["hedged-model"]}
        routing:
          hedge: {enabled: true, cold_start_race: false, threshold: 1ms, min_threshold: 1ms, max_parallel: 2,
                  budget_percent: 100}
        health_check: {enabled: false}
        outlier_detection: {enabled: false}
        """,
        SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(FAST_TOKENS),
        SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ofMillis(5)).withTokens(1_000),
        SimulatorOptions.defaults().withTtft(Duration.ofMillis(20)).withItl(Duration.ofMillis(1)).withTokens(20),
        SimulatorOptions.defaults().withTtft(Duration.ofMillis(20)).withItl(Duration.ofMillis(1)).withTokens(20));
    // After Vert.x is loaded: its class initialisation turns leak detection off unless the system
    // property io.netty.leakDetection.level asks for it.
    levelBefore = ResourceLeakDetector.getLevel();
    ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.PARANOID);
    leakLogger = (Logger) LoggerFactory.getLogger(ResourceLeakDetector.class);
    reports = new ListAppender<>();
    reports.start();
    leakLogger.addAppender(reports);
  }

  @AfterEach
  void stop() {
    if (gw != null) {
      gw.close();
    }
    leakLogger.detachAppender(reports);
    ResourceLeakDetector.setLevel(levelBefore);
  }

  @Test
  void everyForwardedChunkGoesBackToThePool() throws Exception {
    for (int i = 0; i < 5; i++) {
      TestClient.Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("fast-model", true));
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.events().stream().filter(TestClient.Event::isContent).count()).isEqualTo(FAST_TOKENS);
      assertThat(s.text()).endsWith("data: [DONE]\n\n");
      TestClient.Response r = gw.client.post("/v1/chat/completions", TestClient.chat("fast-model", false));
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.json().getJsonArray("choices")).hasSize(1);
      TestClient.Streamed hedged = gw.client.stream("/v1/chat/completions", TestClient.chat("hedged-model", true));
      assertThat(hedged.status()).isEqualTo(200);
      assertThat(hedged.text()).endsWith("data: [DONE]\n\n");
    }
    overHttp2();

    // A client that goes away mid-stream.
    TestClient.OpenStream cut = gw.client.openStream("/v1/chat/completions", TestClient.chat("slow-model", true));
    await().atMost(Duration.ofSeconds(5)).until(() -> cut.text().split("\n\n").length > 10);
    cut.request().connection().close();
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(1).get(0).clientDisconnected());

    // A client that reads nothing (a socket whose receive buffer is small), so chunks wait in its
    // write queue; it goes away once the backend has stalled, held back by the gateway.
    int before = gw.posts(0).size();
    try (Socket stalled = new Socket()) {
      stalled.setReceiveBufferSize(4096);
      stalled.connect(new InetSocketAddress("127.0.0.1", gw.port()));
      String body = "{\"model\":\"fast-model\",\"stream\":true,\"max_tokens\":200000,"
          + "\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}";
      stalled.getOutputStream().write(("POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
          + "content-type: application/json\r\ncontent-length: " + body.length() + "\r\n\r\n" + body)
          .getBytes(StandardCharsets.US_ASCII));
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() > before);
      int[] seen = new int[3];
      await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(100)).until(() -> {
        int sent = gw.posts(0).get(before).chunksSent();
        boolean stalledFor3Polls = sent > 0 && sent == seen[0] && sent == seen[1] && sent == seen[2];
        seen[0] = seen[1];
        seen[1] = seen[2];
        seen[2] = sent;
        return stalledFor3Polls;
      });
    }
    // (10 s: under the load of a whole test run the disconnect once took longer than 5)
    await().atMost(Duration.ofSeconds(10)).until(() -> gw.posts(0).get(before).clientDisconnected());
    assertThat(gw.posts(0).get(before).chunksSent()).as("the backend was held back").isLessThan(200_000);

    gw.close();
    gw = null;

    leakCanary();
    await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(50)).until(() -> {
      System.gc();
      ByteBufAllocator.DEFAULT.directBuffer(16).release(); // each tracked allocation reports what was collected
      return leaks().stream().anyMatch(m -> m.contains(CANARY));
    });
    assertThat(leaks().stream().filter(m -> !m.contains(CANARY)).toList()).as("buffers never released").isEmpty();
  }

  /** A stream and a body over HTTP/2 (h2c with prior knowledge), whose writes are DATA frames. */
  private void overHttp2() {
    HttpClientAgent h2 = gw.vertx.createHttpClient(new HttpClientOptions()
        .setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
    try {
      for (boolean stream : new boolean[] {true, false}) {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(gw.port())
            .setURI("/v1/chat/completions").putHeader(HttpHeaders.CONTENT_TYPE, "application/json");
        Buffer body = TestGateway.await(h2.request(o)
            .compose(req -> req.send(TestClient.chat("fast-model", stream)))
            .compose(resp -> {
              assertThat(resp.version()).isEqualTo(HttpVersion.HTTP_2);
              return resp.body();
            }));
        assertThat(body.toString()).contains(stream ? "data: [DONE]" : "\"choices\"");
      }
    } finally {
      TestGateway.await(h2.close());
    }
  }

  private static void leakCanary() {
    ByteBuf canary = ByteBufAllocator.DEFAULT.directBuffer(16);
    canary.touch(CANARY);
  }

  private List<String> leaks() {
    List<String> messages = new ArrayList<>();
    for (ILoggingEvent e : Logs.snapshot(reports)) {
      if (e.getFormattedMessage().contains("LEAK")) {
        messages.add(e.getFormattedMessage());
      }
    }
    return messages;
  }
}
