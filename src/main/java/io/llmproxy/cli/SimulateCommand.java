package io.llmproxy.cli;

import io.llmproxy.api.VertxSetup;
import io.llmproxy.sim.SimDuration;
import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;

/** {@code llmproxy simulate}: a simulated vLLM-like backend, until SIGTERM or SIGINT. */
@Command(
    name = "simulate",
    mixinStandardHelpOptions = true,
    showDefaultValues = true,
    description = "Run a simulated vLLM-like OpenAI-compatible backend")
public final class SimulateCommand implements Callable<Integer> {

  @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to listen on.")
  String host;

  @Option(names = "--port", defaultValue = "8000", description = "Port to listen on.")
  int port;

  @Option(names = "--name", defaultValue = "sim",
      description = "Name of this backend, in token texts and stats.")
  String name;

  @Option(names = "--ttft", defaultValue = "200ms", converter = DurationConverter.class,
      description = "Time to first token (200ms, 2s, or ms as a number).")
  Duration ttft;

  @Option(names = "--itl", defaultValue = "20ms", converter = DurationConverter.class,
      description = "Inter-token latency.")
  Duration itl;

  @Option(names = "--tokens", defaultValue = "16",
      description = "Output tokens when a request sets no max_tokens.")
  int tokens;

  @Option(names = "--jitter", defaultValue = "0ms", converter = DurationConverter.class,
      description = "Uniform +/- jitter on the TTFT and on each ITL.")
  Duration jitter;

  @Option(names = "--tail-prob", defaultValue = "0",
      description = "Probability that a request's TTFT gets --tail-ms added.")
  double tailProbability;

  @Option(names = "--tail-ms", defaultValue = "0",
      description = "Heavy-tail delay in milliseconds.")
  long tailMillis;

  @Option(names = "--fail-rate", defaultValue = "0",
      description = "Probability that a request fails with --fail-status before any byte.")
  double failRate;

  @Option(names = "--fail-status", defaultValue = "500", description = "Status of failures.")
  int failStatus;

  @Option(names = "--hang-rate", defaultValue = "0",
      description = "Probability that a request is never answered.")
  double hangRate;

  @Option(names = "--early-headers",
      description = "Streaming: send headers and the role chunk at once, tokens after the TTFT.")
  boolean earlyHeaders;

  @Option(names = "--models", split = ",", defaultValue = "sim-model",
      description = "Served model names, comma-separated.")
  List<String> models;

  @Option(names = "--strict-models",
      description = "Answer 404 model_not_found for a model not in --models.")
  boolean strictModels;

  @Option(names = "--unhealthy", description = "GET /health answers 503.")
  boolean unhealthy;

  @Option(names = "--instances", defaultValue = "0",
      description = "HTTP servers sharing the port, one per event loop (0: one per core).")
  int instances;

  @Override
  public Integer call() throws Exception {
    SimulatorOptions options;
    try {
      options = options();
    } catch (IllegalArgumentException e) {
      System.err.println("simulate: " + e.getMessage());
      return 2;
    }
    int servers = instances > 0 ? instances : Runtime.getRuntime().availableProcessors();
    Vertx vertx = Vertx.vertx(VertxSetup.options(servers).setPreferNativeTransport(true));
    Simulator simulator;
    try {
      simulator = Simulator.start(vertx, options, servers).await(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      vertx.close();
      System.err.println("simulator " + name + " could not listen on " + host + ":" + port + ": "
          + e.getMessage());
      return 1;
    }
    System.out.println("simulator " + name + " listening on " + simulator.url());
    System.out.flush();
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        simulator.close().transform(ignored -> vertx.close()).await(5, TimeUnit.SECONDS);
      } catch (Exception e) {
        System.err.println("simulator " + name + " did not close cleanly: " + e);
      }
      stopped.countDown();
    }, "simulator-shutdown"));
    stopped.await();
    return 0;
  }

  /** The options the command line asks for. */
  SimulatorOptions options() {
    return SimulatorOptions.defaults()
        .withHost(host)
        .withPort(port)
        .withName(name)
        .withTtft(ttft)
        .withItl(itl)
        .withTokens(tokens)
        .withJitter(jitter)
        .withTail(tailProbability, Duration.ofMillis(tailMillis))
        .withFail(failRate, failStatus)
        .withHangRate(hangRate)
        .withEarlyHeaders(earlyHeaders)
        .withModels(models)
        .withStrictModels(strictModels)
        .withHealthy(!unhealthy);
  }

  /** picocli's converter for {@link SimDuration}. */
  static final class DurationConverter implements ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      return SimDuration.parse(value);
    }
  }
}
