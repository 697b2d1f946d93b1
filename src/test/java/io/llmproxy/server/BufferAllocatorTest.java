package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.JavaProcess;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line serves on Netty's pooled buffer allocator unless {@code -Dio.netty.allocator.type}
 * chooses another, and {@code /metrics} shows the memory the allocator holds
 * ({@code netty_allocator_*}). Each case is a real {@code serve} process, since Netty reads the
 * choice once per JVM.
 */
class BufferAllocatorTest {
  private static final Pattern LISTENING = Pattern.compile("llmproxy listening on [^ ]+:(\\d+) ");
  private static Vertx vertx;
  private static Simulator sim;

  @TempDir
  static Path dir;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx();
    sim = TestGateway.await(Simulator.start(vertx, SimulatorOptions.defaults().withTokens(3)));
  }

  @AfterAll
  static void stop() {
    TestGateway.await(vertx.close());
  }

  @Test
  void serveTakesThePooledAllocator() throws Exception {
    assertThat(allocatorAfterARequest(List.of(), "pooled")).isEqualTo("PooledByteBufAllocator");
  }

  @Test
  void theSystemPropertyStillChooses() throws Exception {
    assertThat(allocatorAfterARequest(List.of("-Dio.netty.allocator.type=adaptive"), "adaptive"))
        .isEqualTo("AdaptiveByteBufAllocator");
  }

  /** Serves one chat request and returns the {@code allocator_type} label of the allocator's metrics. */
  private static String allocatorAfterARequest(List<String> jvmArgs, String name) throws Exception {
    Path config = dir.resolve(name + ".yaml");
    Files.writeString(config, """
        listen: "127.0.0.1:0"
        backends:
          - url: "%s"
        health_check: {enabled: false}
        logging: {format: text, level: info}
        data_dir: "%s"
        """.formatted(sim.url(), dir.resolve(name)));
    try (JavaProcess gateway = JavaProcess.start(jvmArgs, "io.llmproxy.cli.Main", "serve", "--config",
        config.toString())) {
      Matcher port = LISTENING.matcher(gateway.awaitLine(LISTENING, Duration.ofSeconds(30)));
      assertThat(port.find()).isTrue();
      TestClient client = TestClient.to(vertx, "127.0.0.1", Integer.parseInt(port.group(1)));
      assertThat(client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(200);

      String metrics = client.get("/metrics").text();
      Matcher used = Pattern.compile(
          "netty_allocator_memory_used\\{[^}]*allocator_type=\"(\\w+)\"[^}]*memory_type=\"direct\"[^}]*} (\\S+)")
          .matcher(metrics);
      assertThat(used.find()).as("the allocator's memory in /metrics").isTrue();
      assertThat(Double.parseDouble(used.group(2))).as("direct memory the request's buffers took").isPositive();
      return used.group(1);
    }
  }
}
