package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Acceptance 9: on SIGTERM the gateway (a real process, as in production) stops accepting
 * connections at once and lets the streams in flight finish.
 */
class GracefulShutdownTest {
  private static final Pattern LISTENING = Pattern.compile("llmproxy listening on [^ ]+:(\\d+) ");

  @Test
  void sigtermDrainsStreamsInFlightAndRefusesNewConnections(@TempDir Path dir) throws Exception {
    Vertx vertx = Vertx.vertx();
    Process gateway = null;
    try {
      Simulator sim = TestGateway.await(Simulator.start(vertx, SimulatorOptions.defaults()
          .withTtft(Duration.ofMillis(10)).withItl(Duration.ofMillis(100)).withTokens(15)));
      Path config = dir.resolve("config.yaml");
      Files.writeString(config, """
          listen: "127.0.0.1:0"
          backends:
            - url: "%s"
          health_check: {enabled: false}
          logging: {format: text, level: info, access_log: true}
          drain_timeout: 20s
          """.formatted(sim.url()));
      String java = ProcessHandle.current().info().command().orElse("java");
      gateway = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
          "io.llmproxy.cli.Main", "serve", "--config", config.toString())
          .redirectErrorStream(true).start();
      int port = readPort(gateway);

      TestClient client = TestClient.to(vertx, "127.0.0.1", port);
      List<Future<Streamed>> streams = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        streams.add(client.streamAsync("/v1/chat/completions", TestClient.chat("m", true)));
      }
      await().atMost(Duration.ofSeconds(10)).until(() -> posts(sim).size() == 3
          && posts(sim).stream().allMatch(r -> r.chunksSent() >= 2));

      gateway.destroy(); // SIGTERM

      await().atMost(Duration.ofSeconds(5)).until(() -> refused(port));
      assertThat(posts(sim)).as("streams still running when new connections are refused")
          .anyMatch(r -> !r.completed());
      assertThatThrownBy(() -> new Socket("127.0.0.1", port).close()).isInstanceOf(ConnectException.class);

      for (Future<Streamed> f : streams) {
        Streamed s = TestGateway.await(f);
        assertThat(s.status()).isEqualTo(200);
        assertThat(s.text()).endsWith("data: [DONE]\n\n");
      }
      assertThat(posts(sim)).allMatch(r -> r.completed() && !r.clientDisconnected());
      assertThat(gateway.waitFor(15, TimeUnit.SECONDS)).as("the gateway exits after draining").isTrue();
      assertThat(gateway.exitValue()).as("a stop that was asked for is not a failure").isZero();
    } finally {
      if (gateway != null) {
        gateway.destroyForcibly();
      }
      TestGateway.await(vertx.close());
    }
  }

  private static List<RequestRecord> posts(Simulator sim) {
    return sim.requests().stream().filter(r -> r.method().equals("POST")).toList();
  }

  private static boolean refused(int port) {
    try (Socket s = new Socket("127.0.0.1", port)) {
      return false;
    } catch (ConnectException e) {
      return true;
    } catch (Exception e) {
      return false;
    }
  }

  /** Reads the gateway's output until it says where it listens; keeps draining it afterwards. */
  private static int readPort(Process p) throws Exception {
    BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    CompletableFuture<Integer> port = new CompletableFuture<>();
    Thread reader = new Thread(() -> {
      try {
        String line;
        while ((line = out.readLine()) != null) {
          Matcher m = LISTENING.matcher(line);
          if (m.find()) {
            port.complete(Integer.parseInt(m.group(1)));
          }
        }
        port.completeExceptionally(new IllegalStateException("the gateway exited before listening"));
      } catch (Exception e) {
        port.completeExceptionally(e);
      }
    }, "gateway-output");
    reader.setDaemon(true);
    reader.start();
    return port.get(30, TimeUnit.SECONDS);
  }
}
