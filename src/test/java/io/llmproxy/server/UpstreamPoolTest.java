package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.health.PassiveHealth;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The upstream keep-alive pool: reuse, expiry, the per-backend cap and its wait (upstream.*). */
class UpstreamPoolTest {
  private static final SimulatorOptions FAST =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1);

  private static List<Response> concurrently(TestGateway gw, int n) {
    List<Future<Response>> all = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      all.add(gw.client.sendAsync(HttpMethod.POST, "/v1/chat/completions",
          Buffer.buffer(TestClient.chat("m", false))));
    }
    return all.stream().map(TestGateway::await).toList();
  }

  /** Distinct upstream connections that carried the gateway's requests (the model-list fetch has its own). */
  private static long connections(TestGateway gw) {
    return gw.posts(0).stream().mapToLong(RequestRecord::connectionId).distinct().count();
  }

  @Test
  void connectionsAreKeptAliveReusedAndClosedAfterTheKeepAliveTimeout() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            upstream: {keep_alive_timeout: 1s}
            health_check: {enabled: false}
            """, FAST.withTtft(Duration.ofMillis(100)))) {
      assertThat(concurrently(gw, 20)).allSatisfy(r -> assertThat(r.status()).isEqualTo(200));
      long opened = connections(gw);
      assertThat(opened).as("one connection per concurrent request at most").isBetween(2L, 20L);

      for (int i = 0; i < 10; i++) {
        assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(200);
      }
      assertThat(connections(gw)).as("sequential requests reuse idle connections").isEqualTo(opened);

      // Idle past the keep-alive timeout, every pooled connection is closed.
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).stream()
          .allMatch(r -> gw.sim(0).connectionClosedAtNanos(r.connectionId()).isPresent()));
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(200);
      assertThat(connections(gw)).isEqualTo(opened + 1);
    }
  }

  @Test
  void atTheCapRequestsWaitForAConnectionAndAreServed() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            upstream: {max_connections_per_backend: 2}
            routing:
              timeouts: {connect: 5s}
            health_check: {enabled: false}
            """, FAST.withTtft(Duration.ofMillis(150)))) {
      List<Response> rs = concurrently(gw, 8);
      assertThat(rs).allSatisfy(r -> assertThat(r.status()).isEqualTo(200));
      assertThat(connections(gw)).as("one per event loop").isLessThanOrEqualTo(2);
    }
  }

  @Test
  void aRequestThatCannotGetAConnectionWithinTheConnectTimeoutGets504() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            upstream: {max_connections_per_backend: 2}
            routing:
              retry: {enabled: false}
              timeouts: {connect: 200ms}
            health_check: {enabled: false}
            """, FAST.withTtft(Duration.ofSeconds(2)))) {
      List<Response> rs = concurrently(gw, 6);
      assertThat(rs).filteredOn(r -> r.status() == 200).hasSizeBetween(1, 2);
      assertThat(rs).filteredOn(r -> r.status() == 504).allSatisfy(r ->
          assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("upstream_timeout"));
      assertThat(rs).filteredOn(r -> r.status() == 504).hasSizeGreaterThanOrEqualTo(4).allSatisfy(r ->
          assertThat(r.text()).contains("No connection to backend").contains("max_connections_per_backend"));
      // the gateway's own limit, not the backend's failure: four of them would have ejected it
      assertThat(gw.gateway.router().backends().get(0).passive().state()).isEqualTo(PassiveHealth.State.HEALTHY);
    }
  }

  @Test
  void aRequestBeyondTheWaitQueueGets502AndTheBackendIsNotBlamed() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            upstream: {max_connections_per_backend: 2, max_wait_queue: 0}
            routing:
              retry: {enabled: false}
            health_check: {enabled: false}
            """, FAST.withTtft(Duration.ofSeconds(1)))) {
      List<Response> rs = concurrently(gw, 7);
      assertThat(rs).filteredOn(r -> r.status() == 200).hasSizeBetween(1, 2);
      assertThat(rs).filteredOn(r -> r.status() == 502).hasSizeGreaterThanOrEqualTo(5).allSatisfy(r -> {
        assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("upstream_error");
        assertThat(r.text()).contains("Too many requests wait for a connection").contains("max_wait_queue: 0");
      });
      assertThat(gw.gateway.router().backends().get(0).passive().state()).isEqualTo(PassiveHealth.State.HEALTHY);
      assertThat(gw.posts(0)).as("only the requests that had a connection reached the backend").hasSizeBetween(1, 2);
    }
  }
}
