package io.llmproxy.usage;

import static io.llmproxy.usage.UsageEvents.event;
import static io.llmproxy.usage.UsageEvents.events;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.store.EmbeddedStore;
import io.llmproxy.store.QuotaCounter;
import io.llmproxy.store.Store;
import io.llmproxy.store.StoredKey;
import io.llmproxy.store.UsageSpool;
import io.llmproxy.store.UsageTotal;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The recorder's contract: {@code record} only queues; one writer adds each event to its key's UTC
 * daily totals and to the spool, and acknowledges a batch only after the single commit that made it
 * durable; close writes whatever is still queued.
 */
class UsageRecorderTest {
  private static final Instant LATE_JAN_1 = Instant.parse("2025-01-01T23:59:59.900Z");
  private static final Instant EARLY_JAN_2 = Instant.parse("2025-01-02T00:00:00.100Z");

  private final MeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

  @Test
  void totalsPerKeyAndUtcDayLandInTheStoreAndEveryEventIsSpooled() {
    try (Store store = EmbeddedStore.inMemory()) {
      List<UsageEvent> recorded = List.of(
          event("r1", "k1", LATE_JAN_1, 100, 10),
          event("r2", "k1", LATE_JAN_1, 200, 20),
          event("r3", "k1", EARLY_JAN_2, 1, 2),
          event("r4", "k2", EARLY_JAN_2, 7, 8),
          event("r5", null, EARLY_JAN_2, 3, 4));
      try (UsageRecorder recorder = new UsageRecorder(store, true, registry)) {
        recorded.forEach(recorder::record);
        await().atMost(Duration.ofSeconds(10)).until(() -> recorder.acknowledged() == 5);
      }

      LocalDate jan1 = LocalDate.of(2025, 1, 1);
      LocalDate jan2 = LocalDate.of(2025, 1, 2);
      assertThat(store.usage("k1", null, null)).containsExactly(
          new UsageTotal("k1", jan1, 2, 300, 30), new UsageTotal("k1", jan2, 1, 1, 2));
      assertThat(store.usage("k2", null, null)).containsExactly(new UsageTotal("k2", jan2, 1, 7, 8));
      assertThat(store.usage("-", null, null)).as("auth off: no key id")
          .containsExactly(new UsageTotal("-", jan2, 1, 3, 4));

      List<Map.Entry<Long, byte[]>> spooled = store.spool().after(0, 100);
      assertThat(spooled).hasSize(5);
      for (int i = 0; i < 5; i++) {
        io.vertx.core.json.JsonObject got = new io.vertx.core.json.JsonObject(new String(spooled.get(i).getValue(),
            java.nio.charset.StandardCharsets.UTF_8));
        assertThat((String) got.remove("event_id")).startsWith("evt_");
        io.vertx.core.json.JsonObject want = new io.vertx.core.json.JsonObject(new String(recorded.get(i).toJson(),
            java.nio.charset.StandardCharsets.UTF_8));
        want.remove("event_id");
        assertThat(got).as("spooled in recording order").isEqualTo(want);
      }
      assertThat(events(registry, "recorded")).isEqualTo(5);
      assertThat(events(registry, "spooled")).isEqualTo(5);
      assertThat(events(registry, "dropped")).isZero();
    }
  }

  @Test
  void withoutAWebhookNothingIsSpooled() {
    try (Store store = EmbeddedStore.inMemory()) {
      try (UsageRecorder recorder = new UsageRecorder(store, false, registry)) {
        recorder.record(event("r1"));
        await().atMost(Duration.ofSeconds(10)).until(() -> recorder.acknowledged() == 1);
      }
      assertThat(store.usage("k1", null, null)).singleElement().extracting(UsageTotal::requests).isEqualTo(1L);
      assertThat(store.spool().size()).isZero();
      assertThat(events(registry, "spooled")).isZero();
    }
  }

  @Test
  void eventsEndingDuringACommitShareTheNextOne() throws Exception {
    GatedStore store = new GatedStore(EmbeddedStore.inMemory());
    List<Long> acks = new CopyOnWriteArrayList<>();
    try (UsageRecorder recorder = new UsageRecorder(store, true, registry)) {
      recorder.onAcknowledged(acks::add);
      recorder.record(event("first"));
      assertThat(store.firstCommitStarted.await(10, TimeUnit.SECONDS)).isTrue();
      assertThat(recorder.acknowledged()).as("not acknowledged before its commit returns").isZero();
      for (int i = 0; i < 999; i++) {
        recorder.record(event("r" + i));
      }
      store.release.countDown();
      await().atMost(Duration.ofSeconds(10)).until(() -> recorder.acknowledged() == 1000);
      assertThat(store.commits.get()).as("one commit for the first event, one for the 999 queued behind it")
          .isEqualTo(2);
      assertThat(acks).containsExactly(1L, 1000L);
    } finally {
      store.close();
    }
  }

  @Test
  void overItsBoundTheQueueDropsAndCountsInsteadOfGrowing() throws Exception {
    GatedStore store = new GatedStore(EmbeddedStore.inMemory());
    try (UsageRecorder recorder = new UsageRecorder(store, true, registry, 10)) {
      recorder.record(event("first"));
      assertThat(store.firstCommitStarted.await(10, TimeUnit.SECONDS)).isTrue();
      for (int i = 0; i < 15; i++) {
        recorder.record(event("r" + i));
      }
      assertThat(events(registry, "dropped")).isEqualTo(5);
      store.release.countDown();
      await().atMost(Duration.ofSeconds(10)).until(() -> recorder.acknowledged() == 11);
      assertThat(events(registry, "recorded")).isEqualTo(11);
    } finally {
      store.close();
    }
  }

  @Test
  void closeWritesEverythingStillQueued() {
    try (Store store = EmbeddedStore.inMemory()) {
      UsageRecorder recorder = new UsageRecorder(store, true, registry);
      for (int i = 0; i < 20_000; i++) {
        recorder.record(event("r" + i));
      }
      recorder.close();
      assertThat(recorder.acknowledged()).isEqualTo(20_000);
      assertThat(store.usage("k1", null, null)).singleElement().extracting(UsageTotal::requests).isEqualTo(20_000L);
      assertThat(store.spool().size()).isEqualTo(20_000);

      recorder.record(event("too-late"));
      assertThat(events(registry, "dropped")).as("recorded after close").isEqualTo(1);
    }
  }

  @Test
  void acknowledgedEventsSurviveReopeningTheStore(@TempDir Path dir) {
    List<String> ids = new ArrayList<>();
    Store store = EmbeddedStore.open(dir);
    try (UsageRecorder recorder = new UsageRecorder(store, true, registry)) {
      for (int i = 0; i < 300; i++) {
        ids.add("req-" + i);
        recorder.record(event("req-" + i, "k" + (i % 3), LATE_JAN_1, 10, 1));
      }
    } finally {
      store.close();
    }

    try (Store reopened = EmbeddedStore.open(dir)) {
      assertThat(reopened.usage(null, null, null)).extracting(UsageTotal::requests).containsExactly(100L, 100L, 100L);
      assertThat(reopened.usage("k0", null, null)).singleElement()
          .satisfies(t -> assertThat(t.promptTokens()).isEqualTo(1000));
      assertThat(reopened.spool().after(0, 1000)).extracting(e -> new JsonObject(new String(e.getValue(),
          java.nio.charset.StandardCharsets.UTF_8)).getString("request_id")).containsExactlyElementsOf(ids);
    }
  }

  /** A store whose first commit waits for the test, so events can be queued while it runs. */
  private static final class GatedStore implements Store {
    final Store delegate;
    final AtomicInteger commits = new AtomicInteger();
    final CountDownLatch firstCommitStarted = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);

    GatedStore(Store delegate) {
      this.delegate = delegate;
    }

    @Override
    public void commit() {
      if (commits.incrementAndGet() == 1) {
        firstCommitStarted.countDown();
        try {
          release.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      delegate.commit();
    }

    @Override
    public Collection<StoredKey> keys() {
      return delegate.keys();
    }

    @Override
    public void putKey(StoredKey key) {
      delegate.putKey(key);
    }

    @Override
    public boolean deleteKey(String id) {
      return delegate.deleteKey(id);
    }

    @Override
    public Map<String, QuotaCounter> quotaCounters() {
      return delegate.quotaCounters();
    }

    @Override
    public void putQuotaCounters(Map<String, QuotaCounter> counters) {
      delegate.putQuotaCounters(counters);
    }

    @Override
    public void deleteQuotaCounter(String keyId) {
      delegate.deleteQuotaCounter(keyId);
    }

    @Override
    public void addUsage(String keyId, LocalDate day, long requests, long promptTokens, long completionTokens) {
      delegate.addUsage(keyId, day, requests, promptTokens, completionTokens);
    }

    @Override
    public List<UsageTotal> usage(String keyId, LocalDate from, LocalDate to) {
      return delegate.usage(keyId, from, to);
    }

    @Override
    public UsageSpool spool() {
      return delegate.spool();
    }

    @Override
    public void close() {
      delegate.close();
    }
  }
}
