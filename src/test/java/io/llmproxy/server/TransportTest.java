package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.IoTransport;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.JavaProcess;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import io.netty.channel.uring.IoUring;
import io.vertx.core.http.HttpClientRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@code transport}: the gateway serves the same on each I/O transport (the suite's other tests run
 * on the default, {@code auto}: io_uring here): a stream through the official SDK, a non-streaming
 * answer, and a client that leaves mid-stream aborting its backend request. A transport that cannot
 * be loaded stops the gateway from starting, unless it is {@code auto}, which falls back.
 */
class TransportTest {

  @ParameterizedTest
  @EnumSource(value = IoTransport.class, names = {"EPOLL", "IO_URING", "NIO"})
  void eachTransportStreamsAnswersAndCancels(IoTransport transport) {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                models: ["sim-model"]
            health_check: {enabled: false}
            transport: %s
            """.formatted(transport.name().toLowerCase(java.util.Locale.ROOT)),
        SimulatorOptions.defaults().withTtft(Duration.ofMillis(10)).withItl(Duration.ofMillis(5)).withTokens(6))) {
      OpenAIClient sdk = OpenAIOkHttpClient.builder().baseUrl(gw.url() + "/v1").apiKey("unused").maxRetries(0)
          .timeout(Duration.ofSeconds(10)).build();
      assertThat(gw.gateway.transport()).isEqualTo(transport.name().toLowerCase(java.util.Locale.ROOT));
      ChatCompletionCreateParams params = ChatCompletionCreateParams.builder()
          .model("sim-model").addUserMessage("Say hello.").build();
      ChatCompletion answer = sdk.chat().completions().create(params);
      assertThat(answer.choices().get(0).message().content()).isPresent().get().asString().isNotEmpty();
      try (StreamResponse<ChatCompletionChunk> stream = sdk.chat().completions().createStreaming(params)) {
        String text = stream.stream().flatMap(c -> c.choices().stream())
            .map(c -> c.delta().content().orElse("")).collect(Collectors.joining());
        assertThat(text).isNotEmpty();
      }

      // A client that leaves mid-stream: the backend sees its request aborted.
      gw.sim(0).options(gw.sim(0).options().withItl(Duration.ofMillis(20)).withTokens(500));
      HttpClientRequest req = gw.client.open("/v1/chat/completions", TestClient.chat("sim-model", true));
      await().atMost(Duration.ofSeconds(5)).until(() -> gw.posts(0).size() == 3 && gw.posts(0).get(2).chunksSent() >= 3);
      req.connection().close();
      await().atMost(Duration.ofSeconds(2)).until(() -> gw.posts(0).get(2).clientDisconnected());
      RequestRecord aborted = gw.posts(0).get(2);
      assertThat(aborted.completed()).isFalse();
      assertThat(gw.sim(0).connectionClosedAtNanos(aborted.connectionId())).isPresent();
      sdk.close();
    }
  }

  @Test
  void autoIsTheDefaultAndNamesAValue() throws Exception {
    assertThat(ConfigLoader.parse("backends: [{url: \"http://127.0.0.1:1\"}]\n", n -> null).transport())
        .isEqualTo(IoTransport.AUTO);
    assertThat(ConfigLoader.parse("backends: [{url: \"http://127.0.0.1:1\"}]\ntransport: io-uring\n", n -> null)
        .transport()).isEqualTo(IoTransport.IO_URING);
  }

  @Test
  void autoTakesIoUringWhereTheKernelOffersIt() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                models: ["sim-model"]
            health_check: {enabled: false}
            """, SimulatorOptions.defaults())) {
      assertThat(gw.gateway.transport()).isEqualTo(IoUring.isAvailable() ? "io_uring" : "epoll");
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("sim-model", false)).status()).isEqualTo(200);
    }
  }

  @Test
  void aTransportThatCannotLoadStopsTheStartButAutoFallsBack(@TempDir Path dir) throws Exception {
    // Without Netty's io_uring library (as where the kernel refuses io_uring): a gateway told to use
    // it does not start; auto takes epoll.
    List<String> noUring = List.of("netty-transport-native-io_uring");
    String strict = config(dir, "strict", "transport: io_uring\n");
    try (JavaProcess p = JavaProcess.startWithout(noUring, List.of(), "io.llmproxy.cli.Main", "serve", "--config",
        strict)) {
      assertThat(p.exitCode(Duration.ofSeconds(30))).isEqualTo(1);
      assertThat(p.lines()).anySatisfy(line -> assertThat(line)
          .contains("llmproxy could not start: transport: io_uring is not available here"));
    }
    try (JavaProcess p = JavaProcess.startWithout(noUring, List.of(), "io.llmproxy.cli.Main", "serve", "--config",
        config(dir, "auto-epoll", ""))) {
      awaitListening(p, "epoll");
      assertThat(p.lines()).anySatisfy(line -> assertThat(line)
          .contains("transport auto: io_uring is not available here").contains("using epoll"));
    }
    // Netty's native transports are all switched off, as where no native library can load: NIO.
    try (JavaProcess p = JavaProcess.start(List.of("-Dio.netty.transport.noNative=true"), "io.llmproxy.cli.Main",
        "serve", "--config", config(dir, "auto-nio", ""))) {
      awaitListening(p, "nio");
    }
  }

  private static String config(Path dir, String name, String extra) throws Exception {
    Path file = dir.resolve(name + ".yaml");
    Files.writeString(file, "listen: \"127.0.0.1:0\"\nbackends: [{url: \"http://127.0.0.1:1\"}]\n"
        + "health_check: {enabled: false}\n" + extra + "data_dir: " + dir.resolve(name) + "\n");
    return file.toString();
  }

  private static void awaitListening(JavaProcess p, String transport) {
    await().atMost(Duration.ofSeconds(30)).until(() -> p.lines().stream()
        .anyMatch(line -> line.contains("llmproxy listening on") && line.contains("event loops (" + transport + ")")));
  }
}
