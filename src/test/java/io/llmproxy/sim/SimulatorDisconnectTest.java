package io.llmproxy.sim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class SimulatorDisconnectTest extends SimTestBase {

  private static final Duration FEW_MS = Duration.ofMillis(100);

  @Test
  void aHungRequestRecordsTheClientLeaving() throws Exception {
    start(fast().withHangRate(1.0));
    TestHttp.Streamed s = http.stream(url("/v1/chat/completions"), "{\"stream\":true}");
    await().atMost(Duration.ofSeconds(2)).until(() -> sim.stats().hung() == 1);

    long closedAt = s.closeConnection();

    await().atMost(Duration.ofSeconds(2)).until(() -> only("/v1/chat/completions")
        .clientDisconnected());
    RequestRecord r = only("/v1/chat/completions");
    assertThat(r.chunksSent()).isZero();
    assertThat(r.status()).isZero();
    assertThat(r.completed()).isFalse();
    assertThat(r.disconnectedAtNanos() - closedAt).isLessThan(FEW_MS.toNanos());
    assertThat(sim.stats().disconnected()).isEqualTo(1);
    assertThat(sim.connectionClosedAtNanos(r.connectionId())).isPresent();
  }

  @Test
  void leavingDuringTheTtftStopsTheRequest() {
    start(fast().withTtft(Duration.ofSeconds(5)));
    TestHttp.Streamed s = http.stream(url("/v1/chat/completions"), "{\"stream\":true}");
    await().atMost(Duration.ofSeconds(2)).until(() -> sim.requests().size() == 1
        && sim.requests().get(0).model() == null && sim.requests().get(0).body().length > 0);

    long closedAt = s.closeConnection();

    await().atMost(Duration.ofSeconds(2)).until(() -> only("/v1/chat/completions")
        .clientDisconnected());
    RequestRecord r = only("/v1/chat/completions");
    assertThat(r.chunksSent()).isZero();
    assertThat(r.disconnectedAtNanos() - closedAt).isLessThan(FEW_MS.toNanos());
    assertThat(sim.stats().hung()).isZero();
  }

  @Test
  void leavingMidStreamStopsTheTokensAndClosesTheConnection() throws Exception {
    start(fast().withTtft(Duration.ofMillis(10)).withItl(Duration.ofMillis(300)).withTokens(50));
    TestHttp.Streamed s = http.stream(url("/v1/chat/completions"), "{\"stream\":true}");
    await().atMost(Duration.ofSeconds(3)).until(() -> s.events() >= 3);

    long closedAt = s.closeConnection();

    await().atMost(Duration.ofSeconds(2)).until(() -> only("/v1/chat/completions")
        .clientDisconnected());
    RequestRecord r = only("/v1/chat/completions");
    assertThat(r.disconnectedAtNanos() - closedAt).isLessThan(FEW_MS.toNanos());
    assertThat(r.chunksSent()).as("role chunk and two tokens").isEqualTo(3);
    assertThat(r.completed()).isFalse();
    assertThat(sim.connectionClosedAtNanos(r.connectionId())).isPresent();
    await().during(Duration.ofMillis(400)).atMost(Duration.ofSeconds(1))
        .until(() -> only("/v1/chat/completions").chunksSent() == 3);
    assertThat(sim.stats().disconnected()).isEqualTo(1);
    assertThat(sim.stats().completed()).isZero();
  }

  @Test
  void leavingBeforeANonStreamingReplyIsRecorded() {
    start(fast().withTtft(Duration.ofSeconds(5)));
    TestHttp.Streamed s = http.stream(url("/v1/completions"), "{\"model\":\"m\"}");
    await().atMost(Duration.ofSeconds(2)).until(() -> sim.requests().size() == 1
        && "m".equals(sim.requests().get(0).model()));

    s.closeConnection();

    await().atMost(Duration.ofSeconds(2)).until(() -> only("/v1/completions")
        .clientDisconnected());
    assertThat(only("/v1/completions").status()).isZero();
  }

  @Test
  void anHttp2StreamResetIsADisconnectThatLeavesTheConnectionOpen() {
    start(fast().withTtft(Duration.ofMillis(10)).withItl(Duration.ofMillis(300)).withTokens(50));
    try (TestHttp h2 = TestHttp.http2(vertx)) {
      TestHttp.Streamed s = h2.stream(url("/v1/chat/completions"), "{\"stream\":true}");
      await().atMost(Duration.ofSeconds(3)).until(() -> s.events() >= 2);

      s.request.reset();

      await().atMost(Duration.ofSeconds(2)).until(() -> only("/v1/chat/completions")
          .clientDisconnected());
      RequestRecord r = only("/v1/chat/completions");
      assertThat(r.chunksSent()).isEqualTo(2);
      assertThat(sim.connectionClosedAtNanos(r.connectionId())).isEmpty();
      assertThat(h2.post(url("/v1/completions"), "{\"max_tokens\":1}").status()).isEqualTo(200);
      assertThat(only("/v1/completions").connectionId()).isEqualTo(r.connectionId());
    }
  }

  @Test
  void connectionIdsAreEqualOnKeepAliveAndDifferAcrossConnections() {
    start(fast());
    http.post(url("/v1/completions"), "{}");
    http.post(url("/v1/completions"), "{}");
    try (TestHttp other = new TestHttp(vertx)) {
      other.post(url("/v1/completions"), "{}");
    }

    var records = sim.requests();
    assertThat(records).hasSize(3);
    assertThat(records.get(0).connectionId()).isEqualTo(records.get(1).connectionId());
    assertThat(records.get(2).connectionId()).isNotEqualTo(records.get(0).connectionId());
    assertThat(sim.connectionClosedAtNanos(records.get(0).connectionId())).isEmpty();
    await().atMost(Duration.ofSeconds(2))
        .until(() -> sim.connectionClosedAtNanos(records.get(2).connectionId()).isPresent());
    assertThat(sim.stats().connectionsOpened()).isEqualTo(2);
    assertThat(sim.stats().openConnections()).isEqualTo(1);
  }

  @Test
  void aCancelledRequestsConnectionIsNotReused() {
    start(fast().withTtft(Duration.ofSeconds(5)));
    TestHttp.Streamed s = http.stream(url("/v1/chat/completions"), "{\"stream\":true}");
    await().atMost(Duration.ofSeconds(2)).until(() -> sim.requests().size() == 1);
    s.closeConnection();
    await().atMost(Duration.ofSeconds(2)).until(() -> sim.requests().get(0).clientDisconnected());

    sim.options(fast());
    http.post(url("/v1/chat/completions"), "{}");

    var records = sim.requests();
    assertThat(sim.connectionClosedAtNanos(records.get(0).connectionId())).isPresent();
    assertThat(records.get(1).connectionId()).isNotEqualTo(records.get(0).connectionId());
  }

  @Test
  void closeClosesOpenConnections() throws Exception {
    start(fast().withHangRate(1.0));
    TestHttp.Streamed s = http.stream(url("/v1/chat/completions"), "{}");
    await().atMost(Duration.ofSeconds(2)).until(() -> sim.stats().hung() == 1);

    sim.close().await(5, TimeUnit.SECONDS);

    await().atMost(Duration.ofSeconds(2)).until(s.head::isDone);
    assertThat(s.head).isCompletedExceptionally();
    assertThat(sim.stats().openConnections()).isZero();
    assertThat(sim.stats().disconnected()).as("not the client's doing").isZero();
    sim = null;
  }
}
