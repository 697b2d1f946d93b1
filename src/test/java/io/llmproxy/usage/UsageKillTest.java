package io.llmproxy.usage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.testing.JavaProcess;
import io.llmproxy.testing.TestGateway;
import io.llmproxy.testing.WebhookReceiver;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Acceptance (SPEC §9): the process is {@code kill -9}'d during a webhook outage and started again;
 * every usage event it had acknowledged reaches the webhook, with its request id. The process is
 * {@link SpoolingProcessMain}, wired as the gateway wires the usage pipeline.
 */
class UsageKillTest {
  private static final Pattern ACK = Pattern.compile("^ACK (\\d+)$");

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
  void everyAcknowledgedEventIsDeliveredAfterAKillDuringAnOutage(@TempDir Path dataDir) {
    receiver.failWith(503);
    int n = 500;
    try (JavaProcess first = JavaProcess.start(SpoolingProcessMain.class.getName(),
        dataDir.toString(), receiver.url(), "req-", Integer.toString(n))) {
      await("all " + n + " acknowledged").atMost(Duration.ofSeconds(60)).until(() -> lastAck(first) == n);
      await("the delivery tried the webhook").atMost(Duration.ofSeconds(30)).until(() -> receiver.refused() > 0);
      first.kill();
    }
    assertThat(receiver.requestIds()).as("nothing accepted during the outage").isEmpty();

    receiver.up();
    List<String> acknowledged = IntStream.range(0, n).mapToObj(i -> "req-" + i).toList();
    try (JavaProcess second = JavaProcess.start(SpoolingProcessMain.class.getName(),
        dataDir.toString(), receiver.url(), "none-", "0")) {
      await("every acknowledged event delivered after the restart").atMost(Duration.ofSeconds(60))
          .until(() -> receiver.requestIds().containsAll(acknowledged));
      assertThat(second.lines()).contains("READY spooled=" + n);
    }
    assertThat(receiver.received()).allSatisfy(r -> assertThat(r.idempotencyKey()).isEqualTo(r.requestId()));
  }

  @Test
  void aKillWhileEventsAreStillBeingRecordedLosesNoAcknowledgedOne(@TempDir Path dataDir) {
    receiver.failWith(503);
    long acked;
    try (JavaProcess first = JavaProcess.start(SpoolingProcessMain.class.getName(),
        dataDir.toString(), receiver.url(), "req-", "-1")) {
      await("events acknowledged while more are recorded").atMost(Duration.ofSeconds(60))
          .until(() -> lastAck(first) >= 300);
      acked = lastAck(first);
      first.kill();
    }

    receiver.up();
    List<String> acknowledged = IntStream.range(0, (int) acked).mapToObj(i -> "req-" + i).toList();
    try (JavaProcess second = JavaProcess.start(SpoolingProcessMain.class.getName(),
        dataDir.toString(), receiver.url(), "none-", "0")) {
      await("every event acknowledged before the kill delivered after the restart")
          .atMost(Duration.ofSeconds(60)).until(() -> receiver.requestIds().containsAll(acknowledged));
    }
    System.out.printf("killed after %d acknowledged; %d delivered after the restart%n", acked,
        receiver.requestIds().size());
  }

  /** The highest {@code ACK <count>} the process printed; 0 before the first. */
  static long lastAck(JavaProcess p) {
    long last = 0;
    for (String line : p.lines()) {
      Matcher m = ACK.matcher(line);
      if (m.matches()) {
        last = Math.max(last, Long.parseLong(m.group(1)));
      }
    }
    return last;
  }
}
