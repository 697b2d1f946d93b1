package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.llmproxy.api.Throwables;
import io.llmproxy.config.ConfigLoader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A gateway that cannot listen says where it tried, which is what {@code llmproxy serve} prints. */
class ListenFailureTest {

  @Test
  void aPortInUseFailsTheStartNamingTheAddress() throws Exception {
    try (ServerSocket taken = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"))) {
      String yaml = """
          listen: "127.0.0.1:%d"
          backends:
            - url: "http://127.0.0.1:9"
          health_check: {enabled: false}
          """.formatted(taken.getLocalPort());
      Throwable failure = catchThrowable(() -> Gateway.start(ConfigLoader.parse(yaml, Map.<String, String>of()::get))
          .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS));
      assertThat(failure).isNotNull();
      assertThat(Throwables.rootMessage(failure))
          .startsWith("listen: cannot listen on 127.0.0.1:" + taken.getLocalPort() + ": ")
          .containsIgnoringCase("in use");
    }
  }
}
