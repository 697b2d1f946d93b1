package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.http.HttpClientRequest;
import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Acceptance 2: when the client goes away, the backend sees its request aborted within 100 ms and
 * the upstream connection is closed, never reused: before any upstream byte, mid-stream, and during
 * a non-streaming call.
 */
class CancellationTest {
  private TestGateway gw;

  @BeforeEach
  void start() {
    gw = TestGateway.start("""
        backends:
          - url: "${SIM0}"
            models: ["sim-model"]
        health_check: {enabled: false}
        """, SimulatorOptions.defaults().withTtft(Duration.ofSeconds(2)).withItl(Duration.ofMillis(20)).withTokens(500));
  }

  @AfterEach
  void stop() {
    gw.close();
  }

  @Test
  void duringPrefillBeforeAnyUpstreamByte() {
    assertAbortSeenAndConnectionClosed(true, 0);
  }

  @Test
  void midStream() {
    gw.sim(0).options(gw.sim(0).options().withTtft(Duration.ofMillis(10)));
    assertAbortSeenAndConnectionClosed(true, 5);
  }

  @Test
  void duringANonStreamingCall() {
    assertAbortSeenAndConnectionClosed(false, 0);
  }

  private void assertAbortSeenAndConnectionClosed(boolean stream, int chunksFirst) {
    // A first request that completes leaves a pooled connection behind: the aborted one must not
    // go back to the pool, so the request after it arrives on a new connection.
    HttpClientRequest req = gw.client.open("/v1/chat/completions", TestClient.chat("sim-model", stream));
    await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 1
        && gw.posts(0).get(0).chunksSent() >= chunksFirst);

    long closedAt = System.nanoTime();
    req.connection().close();

    await().atMost(Duration.ofSeconds(2)).until(() -> gw.posts(0).get(0).clientDisconnected());
    RequestRecord aborted = gw.posts(0).get(0);
    assertThat((aborted.disconnectedAtNanos() - closedAt) / 1_000_000).as("ms until the backend saw the abort")
        .isLessThan(100);
    assertThat(aborted.completed()).isFalse();
    if (chunksFirst > 0) {
      assertThat(aborted.chunksSent()).isGreaterThanOrEqualTo(chunksFirst).isLessThan(500);
    } else {
      assertThat(aborted.chunksSent()).isZero();
    }
    OptionalLong connClosed = gw.sim(0).connectionClosedAtNanos(aborted.connectionId());
    assertThat(connClosed).isPresent();

    // The next request goes over a different upstream connection.
    gw.sim(0).options(gw.sim(0).options().withTtft(Duration.ZERO).withTokens(2));
    assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("sim-model", false)).status()).isEqualTo(200);
    List<RequestRecord> posts = gw.posts(0);
    assertThat(posts.get(1).connectionId()).isNotEqualTo(aborted.connectionId());

    String metrics = gw.gateway.metrics().scrape();
    assertThat(metrics).contains("llmproxy_cancelled_upstream_total{reason=\"client_disconnect\"} 1.0");
    assertThat(metrics).containsPattern("llmproxy_requests_total\\{[^}]*status=\"499\"[^}]*} 1.0");
  }
}
