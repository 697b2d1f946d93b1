package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import io.llmproxy.testing.WebhookReceiver;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 7 acceptance (SPEC §9), through the gateway: the usage webhook is down for 30 s while
 * requests keep coming (streaming and not), then up again: every request's usage event arrives, each
 * request id at least once, as the idempotency key; the delivery backed off instead of hammering the
 * webhook, and the spool empties.
 */
class UsageWebhookTest {
  private static final SimulatorOptions QUICK =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(3);

  @TempDir
  Path dataDir;

  private Vertx vertx;
  private WebhookReceiver receiver;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    receiver = WebhookReceiver.start(vertx);
  }

  @AfterEach
  void stop() {
    receiver.close();
    TestGateway.await(vertx.close());
  }

  @Test
  void webhookDownFor30SecondsThenUpEveryRequestsEventArrives() {
    String yaml = """
        backends: [{url: "${SIM0}", name: sim}]
        health_check: {enabled: false}
        usage_hook: {enabled: true, url: "${HOOK}", timeout: 1s, retry: 2}
        data_dir: "${DATA}"
        """;
    try (TestGateway gw = TestGateway.start(yaml, Map.of("HOOK", receiver.url(), "DATA", dataDir.toString()), QUICK)) {
      List<String> ids = new CopyOnWriteArrayList<>();
      AtomicInteger n = new AtomicInteger();
      Runnable sendOne = () -> {
        int i = n.getAndIncrement();
        String id = "hook-" + i;
        ids.add(id);
        gw.client.sendAsync(HttpMethod.POST, "/v1/chat/completions", Buffer.buffer(TestClient.chat("m", i % 2 == 0)),
            "x-request-id", id);
      };
      for (int i = 0; i < 20; i++) {
        sendOne.run();
      }
      await().atMost(Duration.ofSeconds(10)).until(() -> receiver.requestIds().size() == 20);

      receiver.failWith(503);
      long outageStart = System.nanoTime();
      long ticker = vertx.setPeriodic(100, id -> sendOne.run());
      vertx.setTimer(30_000, id -> {
        vertx.cancelTimer(ticker);
        receiver.up();
      });
      await().atMost(Duration.ofSeconds(10)).until(() -> Scrape.of(gw).value("llmproxy_usage_spool_events") > 0
          && Scrape.of(gw).value("llmproxy_usage_events_total", "outcome", "failed") >= 1);

      await().atMost(Duration.ofSeconds(60)).until(() -> ids.size() > 250 && receiver.requestIds().containsAll(ids));
      System.out.printf("webhook down 30 s through the gateway: %d requests, every event delivered %d ms after it "
          + "came back; %d webhook calls refused%n", ids.size(),
          (System.nanoTime() - outageStart) / 1_000_000 - 30_000, receiver.refused());
      assertThat(receiver.requestIds()).containsExactlyInAnyOrderElementsOf(ids);
      assertThat(receiver.received()).allSatisfy(r -> {
        assertThat(r.idempotencyKey()).isEqualTo(r.requestId());
        assertThat(r.body().getLong("total_tokens")).isPositive();
      });
      assertThat(receiver.received().stream().map(r -> r.body().getString("event_id")).distinct().count())
          .as("one event id per request, the same on every delivery of it").isEqualTo(ids.size());
      assertThat(receiver.refused()).as("backed off rather than hammering a webhook that is down").isLessThan(100);
      await().atMost(Duration.ofSeconds(5)).until(() -> Scrape.of(gw).value("llmproxy_usage_spool_events") == 0);
      Scrape m = Scrape.of(gw);
      assertThat(m.value("llmproxy_usage_events_total", "outcome", "recorded")).isEqualTo(ids.size());
      assertThat(m.value("llmproxy_usage_events_total", "outcome", "dropped")).isZero();
    }
  }
}
