package io.llmproxy.usage;

import io.llmproxy.config.UsageHookConfig;
import io.llmproxy.store.EmbeddedStore;
import io.llmproxy.store.Store;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.Vertx;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A stand-in for the gateway process in {@link UsageKillTest}, wired as the gateway will be: an
 * {@link EmbeddedStore} in a data directory, a {@link UsageRecorder} that spools, and a
 * {@link WebhookDelivery} woken after each commit. It records usage events with the request ids
 * {@code <prefix>0, <prefix>1, ...}, prints {@code ACK <count>} each time the recorder acknowledges
 * (commits) events, and runs until it is killed.
 *
 * <p>Arguments: {@code <data_dir> <webhook url> <request id prefix> <count>}; a count of -1 records one
 * event a millisecond, without end.
 */
public final class SpoolingProcessMain {
  private SpoolingProcessMain() {}

  public static void main(String[] args) throws InterruptedException {
    Path dataDir = Path.of(args[0]);
    URI url = URI.create(args[1]);
    String prefix = args[2];
    int count = Integer.parseInt(args[3]);

    Vertx vertx = Vertx.vertx();
    Store store = EmbeddedStore.open(dataDir);
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    UsageRecorder recorder = new UsageRecorder(store, true, registry);
    WebhookDelivery delivery = new WebhookDelivery(vertx, store,
        new UsageHookConfig(true, url, Duration.ofSeconds(1), 2), registry);
    recorder.onAcknowledged(acknowledged -> {
      System.out.println("ACK " + acknowledged);
      System.out.flush();
      delivery.wake();
    });
    System.out.println("READY spooled=" + store.spool().size());
    System.out.flush();

    if (count >= 0) {
      for (int i = 0; i < count; i++) {
        recorder.record(UsageEvents.event(prefix + i));
      }
    } else {
      AtomicLong next = new AtomicLong();
      vertx.setPeriodic(1, id -> recorder.record(UsageEvents.event(prefix + next.getAndIncrement())));
    }
    new CountDownLatch(1).await(); // until killed
  }
}
