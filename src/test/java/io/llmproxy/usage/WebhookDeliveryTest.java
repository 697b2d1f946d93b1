package io.llmproxy.usage;

import static io.llmproxy.usage.UsageEvents.event;
import static io.llmproxy.usage.UsageEvents.events;
import static io.llmproxy.usage.UsageEvents.spoolGauge;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.llmproxy.config.UsageHookConfig;
import io.llmproxy.store.EmbeddedStore;
import io.llmproxy.store.Store;
import io.llmproxy.testing.Logs;
import io.llmproxy.testing.TestGateway;
import io.llmproxy.testing.WebhookReceiver;
import io.llmproxy.testing.WebhookReceiver.Received;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.LoggerFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The webhook delivery's contract (SPEC §9): every spooled event reaches the webhook at least once,
 * with its request id as the idempotency key, however long the webhook is down or refusing, and it
 * leaves the spool only once the webhook accepted it.
 */
class WebhookDeliveryTest {
  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private Vertx vertx;
  private WebhookReceiver receiver;
  private Store store;
  private UsageRecorder recorder;
  private WebhookDelivery delivery;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx();
    receiver = WebhookReceiver.start(vertx);
    store = EmbeddedStore.inMemory();
  }

  /** The production wiring: the recorder spools, and wakes the delivery after each commit. */
  private void startPipeline() {
    startPipeline(URI.create(receiver.url()));
  }

  private void startPipeline(URI url) {
    recorder = new UsageRecorder(store, true, registry);
    delivery = new WebhookDelivery(vertx, store, new UsageHookConfig(true, url, Duration.ofSeconds(1), 2), registry);
    recorder.onAcknowledged(n -> delivery.wake());
  }

  @AfterEach
  void stop() {
    if (recorder != null) {
      recorder.close();
    }
    if (delivery != null) {
      delivery.close();
    }
    store.close();
    TestGateway.await(vertx.close());
  }

  @Test
  void everyEventArrivesOnceWithItsRequestIdAsIdempotencyKey() {
    startPipeline();
    Map<String, UsageEvent> sent = new LinkedHashMap<>();
    for (int i = 0; i < 500; i++) {
      UsageEvent e = event("req-" + i);
      sent.put(e.requestId(), e);
      recorder.record(e);
    }

    await().atMost(Duration.ofSeconds(20)).until(() -> receiver.requestIds().size() == 500);
    List<Received> got = receiver.received();
    assertThat(got).as("no failure, so no duplicate").hasSize(500);
    for (Received r : got) {
      assertThat(r.idempotencyKey()).isEqualTo(r.requestId());
      assertThat(r.xRequestId()).isEqualTo(r.requestId());
      assertThat(r.contentType()).isEqualTo("application/json");
      JsonObject want = new JsonObject(new String(sent.get(r.requestId()).toJson(), StandardCharsets.UTF_8));
      want.remove("event_id");
      JsonObject body = r.body().copy();
      assertThat((String) body.remove("event_id")).startsWith("evt_");
      assertThat(body).isEqualTo(want);
    }
    await().atMost(Duration.ofSeconds(5)).until(() -> spoolGauge(registry) == 0);
    assertThat(events(registry, "delivered")).isEqualTo(500);
    assertThat(events(registry, "retried")).isZero();
    assertThat(events(registry, "failed")).isZero();

    String text = registry.scrape();
    assertThat(text).containsPattern("(?m)^llmproxy_usage_events_total\\{outcome=\"delivered\"} 500(\\.0)?$")
        .containsPattern("(?m)^llmproxy_usage_events_total\\{outcome=\"spooled\"} 500(\\.0)?$")
        .containsPattern("(?m)^llmproxy_usage_spool_events 0(\\.0)?$");
  }

  @Test
  void aCommittedEventIsSentWithinMillisecondsNotAtTheNextPoll() {
    startPipeline();
    List<Long> latenciesMs = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      int expected = i + 1;
      long t0 = System.nanoTime();
      recorder.record(event("req-" + i));
      await().atMost(Duration.ofSeconds(5)).until(() -> receiver.received().size() == expected);
      latenciesMs.add((receiver.received().get(i).atNanos() - t0) / 1_000_000);
    }
    latenciesMs.sort(null);
    System.out.println("record() to webhook, ms, sorted: " + latenciesMs);
    assertThat(latenciesMs.get(latenciesMs.size() / 2)).as("median, against a %s poll", WebhookDelivery.POLL_INTERVAL)
        .isLessThan(100);
  }

  @Test
  void webhookRefusingConnectionsThenListeningAgainEveryEventArrives() {
    startPipeline();
    receiver.stop();
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      ids.add("req-" + i);
      recorder.record(event("req-" + i));
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> events(registry, "failed") >= 1 && recorder.acknowledged() == 40);
    assertThat(store.spool().size()).isEqualTo(40);

    receiver.up();
    await().atMost(Duration.ofSeconds(15)).until(() -> receiver.requestIds().containsAll(ids));
    await().atMost(Duration.ofSeconds(5)).until(() -> spoolGauge(registry) == 0);
  }

  @Test
  void aRejectedEventIsKeptAndSentAgainNeverDropped() {
    startPipeline();
    receiver.failWith(400);
    for (int i = 0; i < 3; i++) {
      recorder.record(event("req-" + i));
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> events(registry, "failed") >= 2 && recorder.acknowledged() == 3);
    assertThat(store.spool().size()).as("a 4xx does not drop the event").isEqualTo(3);

    receiver.up();
    await().atMost(Duration.ofSeconds(15)).until(() -> receiver.requestIds().size() == 3);
    assertThat(events(registry, "dropped")).isZero();
  }

  @Test
  void anEventTheWebhookKeepsRejectingDoesNotHoldBackTheOthers() {
    startPipeline();
    receiver.answer("poison", 400);
    recorder.record(event("poison"));
    await().atMost(Duration.ofSeconds(10)).until(() -> events(registry, "failed") >= 1);
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      ids.add("req-" + i);
      recorder.record(event("req-" + i));
    }
    await().atMost(Duration.ofSeconds(15)).until(() -> receiver.requestIds().containsAll(ids));
    await("only the rejected event stays spooled").atMost(Duration.ofSeconds(5))
        .until(() -> store.spool().size() == 1);
    await("the rejected event is tried again in the next pass").atMost(Duration.ofSeconds(10))
        .until(() -> events(registry, "failed") >= 2);
    assertThat(store.spool().size()).isEqualTo(1);

    receiver.answer("poison", 0);
    await().atMost(Duration.ofSeconds(15)).until(() -> receiver.requestIds().contains("poison"));
    await().atMost(Duration.ofSeconds(5)).until(() -> spoolGauge(registry) == 0);
  }

  @Test
  void eventsLeftByAPreviousRunAreDeliveredOnStart() {
    for (int i = 0; i < 30; i++) {
      store.spool().append(event("old-" + i).toJson());
    }
    store.commit();
    startPipeline();
    await().atMost(Duration.ofSeconds(10)).until(() -> receiver.requestIds().size() == 30);
    assertThat(receiver.received()).extracting(Received::requestId).allMatch(id -> id.startsWith("old-"));
    await().atMost(Duration.ofSeconds(5)).until(() -> spoolGauge(registry) == 0);
  }

  @Test
  void drainCutsTheBackoffShortOnShutdownAndGivesUpAfterItsTime() {
    startPipeline();
    receiver.failWith(503);
    for (int i = 0; i < 20; i++) {
      recorder.record(event("req-" + i));
    }
    recorder.close();
    await().atMost(Duration.ofSeconds(10)).until(() -> events(registry, "failed") >= 1);

    TestGateway.await(delivery.drain(Duration.ofMillis(300)));
    assertThat(store.spool().size()).as("the webhook still fails: everything stays spooled").isEqualTo(20);

    receiver.up();
    long t0 = System.nanoTime();
    TestGateway.await(delivery.drain(Duration.ofSeconds(20)));
    long drainMs = (System.nanoTime() - t0) / 1_000_000;
    assertThat(store.spool().size()).isZero();
    assertThat(receiver.requestIds()).hasSize(20);
    assertThat(drainMs).as("no waiting out the backoff").isLessThan(WebhookDelivery.MAX_ROUND_BACKOFF.toMillis() / 2);
    System.out.println("drain after the webhook came back: " + drainMs + " ms");
  }

  @Test
  void aSecretInTheWebhooksUrlIsNeverLogged() {
    Logger logger = (Logger) LoggerFactory.getLogger(WebhookDelivery.class);
    ListAppender<ILoggingEvent> logs = new ListAppender<>();
    logs.start();
    logger.addAppender(logs);
    try {
      URI plain = URI.create(receiver.url());
      startPipeline(URI.create("http://hook-user:pass-s3cret@" + plain.getHost() + ":" + plain.getPort()
          + "/usage?token=query-s3cret"));
      receiver.failWith(503);
      recorder.record(event("req-secret"));
      await().atMost(Duration.ofSeconds(10)).until(() -> receiver.refused() >= 1
          && Logs.snapshot(logs).stream().anyMatch(e -> e.getLevel() == Level.WARN));
      List<String> lines = Logs.snapshot(logs).stream().map(ILoggingEvent::getFormattedMessage).toList();
      assertThat(lines).isNotEmpty().noneMatch(l -> l.contains("s3cret") || l.contains("hook-user"));
      assertThat(lines).anyMatch(l -> l.contains("http://" + plain.getHost() + ":" + plain.getPort() + "/usage?..."));
    } finally {
      logger.detachAppender(logs);
    }
  }
}
