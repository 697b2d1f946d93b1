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

    TestGateway.await(gateway.close());

    assertThatThrownBy(() -> {
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
      }
    }).isInstanceOf(IOException.class);
  }

  /** What ServeCommand and DemoCommand do on SIGTERM: wait for the future through a listener. */
  @Test
  void closeFutureNotifiesItsListeners() throws Exception {
    Gateway gateway = start();

    Future<Void> closed = gateway.close();

    closed.toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    assertThat(closed.succeeded()).isTrue();
  }
}
