package io.llmproxy.sim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class SimulatorStatsTest extends SimTestBase {

  @Test
  void statsEndpointReportsCountersServedAndDisconnectedRequests() throws Exception {
    start(fast().withName("s1"));
    http.post(url("/v1/chat/completions"), "{\"model\":\"a\",\"stream\":true}");
    http.post(url("/v1/completions"), "{\"model\":\"b\"}");
    sim.options(sim.options().withTtft(Duration.ofSeconds(5)));
    try (TestHttp other = new TestHttp(vertx)) {
      TestHttp.Streamed s = other.stream(url("/v1/chat/completions"),
          "{\"model\":\"c\",\"stream\":true}");
      await().atMost(Duration.ofSeconds(2)).until(() -> sim.requests().size() == 3
          && "c".equals(sim.requests().get(2).model()));
      s.closeConnection();
      await().atMost(Duration.ofSeconds(2)).until(() -> sim.stats().disconnected() == 1);
    }

    TestHttp.Reply reply = http.get(url("/sim/stats"));

    assertThat(reply.status()).isEqualTo(200);
    JsonNode stats = new ObjectMapper().readTree(reply.body());
    assertThat(stats.get("name").asText()).isEqualTo("s1");
    assertThat(stats.get("served").asLong()).isEqualTo(3);
    assertThat(stats.get("completed").asLong()).isEqualTo(2);
    assertThat(stats.get("disconnected").asLong()).isEqualTo(1);
    assertThat(stats.get("failed").asLong()).isZero();
    assertThat(stats.get("hung").asLong()).isZero();
    assertThat(stats.get("connections_opened").asLong()).isEqualTo(2);
    assertThat(stats.has("connections_closed")).isTrue();
    assertThat(stats.has("open_connections")).isTrue();
    JsonNode gone = stats.get("disconnected_requests");
    assertThat(gone).hasSize(1);
    assertThat(gone.at("/0/model").asText()).isEqualTo("c");
    assertThat(gone.at("/0/path").asText()).isEqualTo("/v1/chat/completions");
    assertThat(gone.at("/0/chunks_sent").asInt()).isZero();
    assertThat(gone.at("/0/after_ms").asLong()).isGreaterThanOrEqualTo(0);
    JsonNode served = stats.get("served_requests");
    assertThat(served).hasSize(3);
    assertThat(served.at("/0/model").asText()).isEqualTo("a");
    assertThat(served.at("/0/stream").asBoolean()).isTrue();
    assertThat(served.at("/0/status").asInt()).isEqualTo(200);
    assertThat(served.at("/0/chunks_sent").asInt()).isEqualTo(1 + 4 + 1);
    assertThat(served.at("/0/completed").asBoolean()).isTrue();
    assertThat(served.at("/2/completed").asBoolean()).isFalse();
    assertThat(sim.requests()).as("/sim/stats itself is not recorded").hasSize(3);
  }

  @Test
  void recordLimitKeepsTheNewestAndResetClearsEverything() {
    start(fast().withRecordLimit(3));
    for (int i = 0; i < 5; i++) {
      http.post(url("/v1/embeddings"), "{\"input\":\"" + i + "\"}");
    }

    assertThat(sim.requests()).extracting(RequestRecord::id).containsExactly(3L, 4L, 5L);
    assertThat(sim.stats().served()).isEqualTo(5);

    sim.reset();
    assertThat(sim.requests()).isEmpty();
    assertThat(sim.stats().served()).isZero();
    assertThat(sim.stats().completed()).isZero();
    assertThat(sim.stats().openConnections()).isEqualTo(1);
    http.post(url("/v1/embeddings"), "{\"input\":\"x\"}");
    assertThat(sim.requests()).extracting(RequestRecord::id).containsExactly(6L);
  }

  @Test
  void instancesShareOnePortAndOneState() throws Exception {
    sim = Simulator.start(vertx, fast(), 2).await(10, TimeUnit.SECONDS);
    http = new TestHttp(vertx, 4);
    for (int i = 0; i < 8; i++) {
      try (TestHttp client = new TestHttp(vertx)) {
        assertThat(client.post(url("/v1/completions"), "{}").status()).isEqualTo(200);
      }
    }

    assertThat(sim.port()).isPositive();
    assertThat(sim.stats().served()).isEqualTo(8);
    Simulator other = Simulator.start(vertx, fast(), 2).await(10, TimeUnit.SECONDS);
    try {
      assertThat(other.port()).isNotEqualTo(sim.port());
      assertThat(http.post(other.url() + "/v1/completions", "{}").status()).isEqualTo(200);
      assertThat(other.stats().served()).isEqualTo(1);
      assertThat(sim.stats().served()).isEqualTo(8);
    } finally {
      other.close().await(10, TimeUnit.SECONDS);
    }
    assertThat(sim.stats().completed()).isEqualTo(8);
    assertThat(sim.requests()).hasSize(8);
    assertThat(sim.requests()).extracting(RequestRecord::connectionId).doesNotHaveDuplicates();
  }
}
