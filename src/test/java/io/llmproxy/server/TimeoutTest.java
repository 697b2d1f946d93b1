package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Event;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Issue 3, forwarding: the connect, idle and total timeouts (SPEC §3 {@code routing.timeouts}; the
 * first-token timeout is in {@link RetryTest}). Before the first byte a timeout is an error answer;
 * after it, the stream ends with one SSE error event, and the backend sees its request aborted.
 */
class TimeoutTest {
  /** The request timeouts run on a wheel with 10 ms ticks: they fire at their deadline or up to a tick later. */
  private static final long TICK_MS = 10;

  /**
   * A loopback listener that never completes a connection: its accept queue (backlog 1) is filled
   * with connections nobody accepts, and Linux then drops further SYNs (tcp_conn_request, "listen
   * queue overflow"), so a connect neither succeeds nor is refused until the connector gives up. The
   * queue is filled until a probing connect itself times out, which proves the state; if that never
   * happens (not Linux, say) the test is skipped rather than made to depend on timing.
   */
  private static final class Blackhole implements AutoCloseable {
    private final ServerSocket server;
    private final List<Socket> queued = new ArrayList<>();

    Blackhole() throws IOException {
      server = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"));
      InetSocketAddress address = new InetSocketAddress("127.0.0.1", server.getLocalPort());
      for (int i = 0; i < 8; i++) {
        Socket s = new Socket();
        try {
          s.connect(address, 100);
          queued.add(s);
        } catch (SocketTimeoutException e) {
          s.close();
          return; // the queue is full: SYNs are dropped now
        } catch (IOException e) {
          s.close();
          break; // refused or reset on overflow (tcp_abort_on_overflow): no hanging connect here
        }
      }
      close();
      Assumptions.abort("a full accept queue does not make connects hang on this system");
    }

    String url() {
      return "http://127.0.0.1:" + server.getLocalPort();
    }

    @Override
    public void close() throws IOException {
      for (Socket s : queued) {
        s.close();
      }
      server.close();
    }
  }

  private static final String TWO_BACKENDS = """
      backends:
        - url: "${A}"
          name: a
          weight: 100
        - url: "${SIM0}"
          name: b
      routing:
        retry: {enabled: true, max_retries: 1, initial_wait: 1ms, max_wait: 2ms}
        timeouts: {connect: 200ms}
      health_check: {enabled: false}
      """;

  @Test
  void connectTimeoutIsRetriedOnAnotherBackend() throws IOException {
    try (Blackhole blackhole = new Blackhole();
        TestGateway gw = TestGateway.start(TWO_BACKENDS, Map.of("A", blackhole.url()),
            SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(2))) {
      long start = System.nanoTime();
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      long ms = (System.nanoTime() - start) / 1_000_000;
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.header("x-llmproxy-backend")).isEqualTo("b");
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(ms).as("ms until answered").isBetween(200L - TICK_MS, 1_500L);
      assertThat(gw.posts(0)).singleElement().satisfies(rec -> assertThat(rec.completed()).isTrue());
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_retries_total{reason=\"connect_error\"} 1.0");
    }
  }

  @Test
  void connectTimeoutOnEveryAttemptGives504NamingTheTimeout() throws IOException {
    try (Blackhole blackhole = new Blackhole();
        TestGateway gw = TestGateway.start("""
            backends:
              - url: "${A}"
                name: a
            routing:
              retry: {enabled: true, max_retries: 1, initial_wait: 1ms, max_wait: 2ms}
              timeouts: {connect: 200ms}
            health_check: {enabled: false}
            """, Map.of("A", blackhole.url()))) {
      long start = System.nanoTime();
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      long ms = (System.nanoTime() - start) / 1_000_000;
      // A timeout, like nginx's answer to one while connecting (a refused connection is a 502).
      assertThat(r.status()).isEqualTo(504);
      JsonObject error = r.json().getJsonObject("error");
      assertThat(error.getString("code")).isEqualTo("upstream_timeout");
      assertThat(error.getString("message")).contains("did not accept the connection in time");
      assertThat(r.header("x-llmproxy-attempts")).isEqualTo("2");
      assertThat(ms).as("ms until answered: two connect timeouts").isBetween(400L - 2 * TICK_MS, 2_000L);
    }
  }

  @Test
  void idleTimeoutMidStreamEndsTheStreamWithOneErrorEventAndAbortsTheBackend() {
    // The first token comes at once, the second only after 5 s: the stream goes quiet mid-way.
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            routing:
              timeouts: {idle: 200ms}
            health_check: {enabled: false}
            """, SimulatorOptions.defaults().withTtft(Duration.ofMillis(10)).withItl(Duration.ofSeconds(5))
            .withTokens(5))) {
      Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m", true));
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.headers().get("x-llmproxy-attempts")).isEqualTo("1");
      List<Event> events = s.events();
      assertThat(events).hasSize(3); // role chunk, first token, error
      assertThat(events.get(1).isContent()).isTrue();
      Event error = events.get(2);
      assertThat(new JsonObject(error.data()).getJsonObject("error").getString("code")).isEqualTo("upstream_timeout");
      assertThat(events).noneMatch(e -> e.data().equals("[DONE]"));
      long quietMs = (error.atNanos() - events.get(1).atNanos()) / 1_000_000;
      // Seen from the client, whose own event loop may be late for the first token: looser below.
      assertThat(quietMs).as("ms of silence before the error event").isBetween(150L, 1_000L);

      await().atMost(Duration.ofSeconds(1)).until(() -> gw.posts(0).get(0).clientDisconnected());
      RequestRecord seen = gw.posts(0).get(0);
      assertThat(seen.completed()).isFalse();
      assertThat(seen.chunksSent()).isEqualTo(2);
      assertThat((seen.disconnectedAtNanos() - seen.chunkSentAtNanos()[1]) / 1_000_000)
          .as("ms from the backend's last write to the abort").isBetween(200L - TICK_MS, 1_000L);
      String metrics = gw.gateway.metrics().scrape();
      assertThat(metrics).contains("llmproxy_retries_refused_total{reason=\"committed\"} 1.0");
    }
  }

  @Test
  void totalTimeoutBeforeAnyByteGives504() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            routing:
              timeouts: {total: 300ms}
            health_check: {enabled: false}
            """, SimulatorOptions.defaults().withTtft(Duration.ofSeconds(5)).withTokens(3))) {
      for (boolean stream : new boolean[] {true, false}) {
        long start = System.nanoTime();
        Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", stream));
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertThat(r.status()).as("stream=%s", stream).isEqualTo(504);
        assertThat(r.header("content-type")).isEqualTo("application/json");
        assertThat(r.header("x-llmproxy-attempts")).isEqualTo("1");
        JsonObject error = r.json().getJsonObject("error");
        assertThat(error.getString("code")).isEqualTo("upstream_timeout");
        assertThat(error.getString("type")).isEqualTo("server_error");
        assertThat(ms).as("ms until answered").isBetween(300L - TICK_MS, 1_500L);
      }
      await().atMost(Duration.ofSeconds(1)).until(() -> gw.posts(0).size() == 2
          && gw.posts(0).stream().allMatch(RequestRecord::clientDisconnected));
      assertThat(gw.posts(0)).allSatisfy(seen -> {
        assertThat(seen.completed()).isFalse();
        assertThat(seen.chunksSent()).isZero();
        assertThat((seen.disconnectedAtNanos() - seen.receivedAtNanos()) / 1_000_000).isBetween(300L - TICK_MS, 1_500L);
      });
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_cancelled_upstream_total{reason=\"timeout\"} 2.0");
    }
  }

  @Test
  void totalTimeoutMessageNamesTheConfiguredTimeout() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            routing:
              timeouts: {total: 300ms}
            health_check: {enabled: false}
            """, SimulatorOptions.defaults().withTtft(Duration.ofSeconds(5)).withTokens(3))) {
      Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      assertThat(r.status()).isEqualTo(504);
      assertThat(r.json().getJsonObject("error").getString("message")).containsAnyOf("300ms", "300 ms", "0.3s", "0.3 s");
      await().atMost(Duration.ofSeconds(1)).until(() -> gw.posts(0).get(0).clientDisconnected());
    }
  }

  @Test
  void totalTimeoutAfterTheFirstByteEndsTheStreamWithOneErrorEvent() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            routing:
              timeouts: {total: 300ms}
            health_check: {enabled: false}
            """, SimulatorOptions.defaults().withTtft(Duration.ofMillis(10)).withItl(Duration.ofMillis(50))
            .withTokens(100))) {
      long start = System.nanoTime();
      Streamed s = gw.client.stream("/v1/chat/completions", TestClient.chat("m", true));
      assertThat(s.status()).isEqualTo(200);
      List<Event> events = s.events();
      assertThat(events.stream().filter(Event::isContent).count()).isBetween(2L, 10L);
      Event last = events.get(events.size() - 1);
      assertThat(new JsonObject(last.data()).getJsonObject("error").getString("code")).isEqualTo("upstream_timeout");
      assertThat(events.stream().filter(e -> e.data().startsWith("{\"error\"")).count()).isEqualTo(1);
      assertThat(events).noneMatch(e -> e.data().equals("[DONE]"));
      assertThat((last.atNanos() - start) / 1_000_000).as("ms until the error event").isBetween(300L - TICK_MS, 1_500L);

      await().atMost(Duration.ofSeconds(1)).until(() -> gw.posts(0).get(0).clientDisconnected());
      RequestRecord seen = gw.posts(0).get(0);
      assertThat(seen.completed()).isFalse();
      assertThat(seen.chunksSent()).isLessThan(100);
      assertThat(gw.gateway.metrics().scrape()).contains("llmproxy_cancelled_upstream_total{reason=\"timeout\"} 1.0");
    }
  }
}
