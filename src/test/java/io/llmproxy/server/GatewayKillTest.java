package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.cli.Main;
import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.store.EmbeddedStore;
import io.llmproxy.store.QuotaCounter;
import io.llmproxy.testing.JavaProcess;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import io.llmproxy.testing.WebhookReceiver;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 7 acceptance (SPEC §9): the gateway, started as a process of its own, is {@code kill -9}'d
 * during a usage-webhook outage after its requests' usage events were acknowledged (committed to the
 * spool, as {@code llmproxy_usage_events_total{outcome="spooled"}} says); started again on the same
 * {@code data_dir} with the webhook back, it delivers every one of them, each with its request id as
 * the idempotency key.
 */
class GatewayKillTest {
  private static final Pattern LISTENING = Pattern.compile("listening on 127\\.0\\.0\\.1:(\\d+)");
  private static final int REQUESTS = 200;

  private Vertx vertx;
  private WebhookReceiver receiver;
  private Simulator sim;
  private final HttpClient http = HttpClient.newHttpClient();

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    receiver = WebhookReceiver.start(vertx);
    sim = TestGateway.await(Simulator.start(vertx,
        SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(3)));
  }

  @AfterEach
  void stop() {
    receiver.close();
    TestGateway.await(vertx.close());
  }

  @Test
  void everyAcknowledgedUsageEventIsDeliveredAfterAKillDuringAWebhookOutage(@TempDir Path dir) throws Exception {
    Path config = dir.resolve("config.yaml");
    Files.writeString(config, """
        listen: "127.0.0.1:0"
        backends: [{url: "%s", name: sim}]
        health_check: {enabled: false}
        usage_hook: {enabled: true, url: "%s", timeout: 1s, retry: 1}
        data_dir: "%s"
        logging: {access_log: false}
        """.formatted(sim.url(), receiver.url(), dir.resolve("data")));
    receiver.failWith(503);
    List<String> ids = new ArrayList<>();
    try (JavaProcess first = JavaProcess.start(Main.class.getName(), "--config", config.toString())) {
      int port = port(first);
      for (int i = 0; i < REQUESTS; i++) {
        String id = "kill-" + i;
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
            .header("content-type", "application/json").header("x-request-id", id)
            .POST(HttpRequest.BodyPublishers.ofString(TestClient.chat("m", i % 2 == 0))).build(),
            HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        ids.add(id);
      }
      await("every event acknowledged (spooled)").atMost(Duration.ofSeconds(30))
          .until(() -> metric(port, "llmproxy_usage_events_total{outcome=\"spooled\"}") == REQUESTS);
      await("the webhook was tried and refused").atMost(Duration.ofSeconds(30)).until(() -> receiver.refused() > 0);
      first.kill();
    }
    assertThat(receiver.requestIds()).as("nothing accepted during the outage").isEmpty();

    receiver.up();
    try (JavaProcess second = JavaProcess.start(Main.class.getName(), "--config", config.toString())) {
      port(second);
      await("every acknowledged event delivered after the restart").atMost(Duration.ofSeconds(60))
          .until(() -> receiver.requestIds().containsAll(ids));
    }
    assertThat(receiver.received()).allSatisfy(r -> {
      assertThat(r.idempotencyKey()).isEqualTo(r.requestId());
      assertThat(r.body().getLong("total_tokens")).isPositive();
    });
  }

  /**
   * A request's tokens reach the key's quota count on disk in the same commit as its usage event: a
   * {@code kill -9} just after the events were acknowledged loses none of the count (the counters
   * were written once a second on their own, so the last second's tokens were free).
   */
  @Test
  void theQuotaCountOfEveryAcknowledgedRequestSurvivesAKill(@TempDir Path dir) throws Exception {
    Path config = dir.resolve("config.yaml");
    Files.writeString(config, """
        listen: "127.0.0.1:0"
        backends: [{url: "%s", name: sim}]
        health_check: {enabled: false}
        auth: {enabled: true}
        api_keys:
          - {key: "sk-llmproxy-kill-quota", name: counted, total_quota: 100000000}
        usage_hook: {enabled: true, url: "%s", timeout: 1s, retry: 1}
        data_dir: "%s"
        logging: {access_log: false}
        """.formatted(sim.url(), receiver.url(), dir.resolve("data")));
    // Twice: a kill lands within a second of the last requests, and once the counters were written
    // only every second, each round had about seven chances in eight of losing some of them.
    long tokens = 0;
    for (int round = 0; round < 2; round++) {
      try (JavaProcess gateway = JavaProcess.start(Main.class.getName(), "--config", config.toString())) {
        int port = port(gateway);
        double spooled = metric(port, "llmproxy_usage_events_total{outcome=\"spooled\"}");
        for (int i = 0; i < 50; i++) {
          HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/chat/completions"))
              .header("content-type", "application/json").header("authorization", "Bearer sk-llmproxy-kill-quota")
              .POST(HttpRequest.BodyPublishers.ofString(TestClient.chat("m", false))).build(),
              HttpResponse.BodyHandlers.ofString());
          assertThat(r.statusCode()).isEqualTo(200);
          tokens += new JsonObject(r.body()).getJsonObject("usage").getLong("total_tokens");
        }
        await("every event acknowledged (spooled)").atMost(Duration.ofSeconds(30))
            .until(() -> metric(port, "llmproxy_usage_events_total{outcome=\"spooled\"}") == spooled + 50);
        gateway.kill();
      }
      try (EmbeddedStore store = EmbeddedStore.open(dir.resolve("data"))) {
        assertThat(store.quotaCounters().values().stream().mapToLong(QuotaCounter::used).sum())
            .as("round %d", round).isEqualTo(tokens);
      }
    }
  }

  /** The port the process said it listens on. */
  private static int port(JavaProcess p) {
    int[] port = {0};
    await("the gateway listening").atMost(Duration.ofSeconds(60)).until(() -> {
      for (String line : p.lines()) {
        Matcher m = LISTENING.matcher(line);
        if (m.find()) {
          port[0] = Integer.parseInt(m.group(1));
          return true;
        }
      }
      assertThat(p.isAlive()).as("gateway process alive; output: %s", p.lines()).isTrue();
      return false;
    });
    return port[0];
  }

  private double metric(int port, String series) throws Exception {
    String text = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
        HttpResponse.BodyHandlers.ofString()).body();
    for (String line : text.split("\n")) {
      if (line.startsWith(series + " ")) {
        return Double.parseDouble(line.substring(series.length() + 1).trim());
      }
    }
    return -1;
  }
}
