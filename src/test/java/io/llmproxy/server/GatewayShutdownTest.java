package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.llmproxy.config.ConfigLoader;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Future;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.Test;

/** {@link Gateway#close()} and {@link Gateway#shutdown}: the future they return (SPEC §2, §9: SIGTERM). */
class GatewayShutdownTest {
  private static final String YAML = """
      listen: "127.0.0.1:0"
      backends:
        - url: "http://127.0.0.1:9"
      health_check: {enabled: false}
      """;

  private static Gateway start() throws Exception {
    return TestGateway.await(Gateway.start(ConfigLoader.parse(YAML, Map.<String, String>of()::get)));
  }

  @Test
  void closeStopsListening() throws Exception {
    Gateway gateway = start();
    int port = gateway.port();

    TestGateway.awaitCompletion(gateway.close());

    assertThatThrownBy(() -> {
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
      }
    }).isInstanceOf(IOException.class);
  }

  /** What ServeCommand and DemoCommand do on SIGTERM: wait for the future through a listener. */
  @Test
  @Disabled("bug: Gateway.shutdown() returns undeploy().eventually(probeClient::close).eventually(vertx::close)"
      + ".onComplete(...), a future of the gateway's own Vert.x context; it is completed only after that Vert.x"
      + " closed, so dispatching to its listeners is rejected ('event executor terminated') and they never run:"
      + " toCompletionStage().get() times out (serve waits drain + 10 s on SIGTERM, then reports an unclean stop)"
      + " and metrics.close() in onComplete never runs")
  void closeFutureNotifiesItsListeners() throws Exception {
    Gateway gateway = start();

    Future<Void> closed = gateway.close();

    closed.toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    assertThat(closed.succeeded()).isTrue();
  }
}
