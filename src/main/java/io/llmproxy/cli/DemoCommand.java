package io.llmproxy.cli;

import static io.llmproxy.api.Throwables.rootMessage;

import io.llmproxy.api.VertxSetup;
import io.llmproxy.config.ConfigException;
import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.server.Gateway;
import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code llmproxy demo}: the gateway with a built-in config in front of three simulated backends with
 * different latency profiles, one with a heavy tail. Prints commands to try.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "Run the gateway in front of three simulated backends, and print commands to try.")
public final class DemoCommand implements Callable<Integer> {
  static final String CLIENT_MODEL = "llama-3-8b";
  static final String BACKEND_MODEL = "llama-3-8b-instruct";

  @Option(names = "--host", description = "Address to listen on (default: ${DEFAULT-VALUE}).",
      defaultValue = "127.0.0.1")
  String host;

  @Option(names = "--port", description = "Port to listen on; 0 picks a free one (default: ${DEFAULT-VALUE}).",
      defaultValue = "8080")
  int port;

  @Spec
  CommandSpec spec;

  /** The running demo, for tests. */
  record Running(Gateway gateway, Vertx simulators) {
    Future<Void> stop() {
      return gateway.close().eventually(simulators::close);
    }
  }

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    if (port < 0 || port > 65535) {
      err.println("demo: --port must be in 0..65535: " + port);
      return 2;
    }
    CompletableFuture<Running> started = new CompletableFuture<>();
    ServeCommand.Termination termination = ServeCommand.Termination.install(() -> {
      Running demo = started.getNow(null);
      if (demo != null) {
        demo.gateway().shutdown(Duration.ofSeconds(5)).eventually(demo.simulators()::close)
            .toCompletionStage().toCompletableFuture().get(15, TimeUnit.SECONDS);
      }
    });
    try {
      started.complete(start());
    } catch (ConfigException e) {
      started.complete(null);
      for (String problem : e.problems()) {
        err.println("demo: " + problem); // the config is built from the options: --host
      }
      return 2;
    } catch (Exception e) {
      started.complete(null);
      err.println("llmproxy demo could not start: " + rootMessage(e));
      return 1;
    }
    termination.await();
    return 0;
  }

  Running start() throws Exception {
    Vertx simVertx = Vertx.vertx(VertxSetup.options(1));
    try {
      List<String> models = List.of(BACKEND_MODEL);
      SimulatorOptions base = SimulatorOptions.defaults().withModels(models).withTokens(24);
      Simulator fast = await(Simulator.start(simVertx, base.withName("gpu-fast")
          .withTtft(Duration.ofMillis(80)).withItl(Duration.ofMillis(15)).withJitter(Duration.ofMillis(5))));
      Simulator steady = await(Simulator.start(simVertx, base.withName("gpu-steady")
          .withTtft(Duration.ofMillis(200)).withItl(Duration.ofMillis(30)).withJitter(Duration.ofMillis(10))));
      Simulator tail = await(Simulator.start(simVertx, base.withName("gpu-tail")
          .withTtft(Duration.ofMillis(100)).withItl(Duration.ofMillis(20))
          .withTail(0.1, Duration.ofSeconds(2))));
      Map<String, String> vars = Map.of(
          "DEMO_LISTEN", (host.contains(":") ? "[" + host + "]" : host) + ":" + port,
          "SIM_FAST", fast.url(),
          "SIM_STEADY", steady.url(),
          "SIM_TAIL", tail.url());
      GatewayConfig config = ConfigLoader.parse(demoYaml(), vars::get);
      LoggingSetup.apply(config.logging());
      Gateway gateway = await(Gateway.start(config));
      printBanner(spec.commandLine().getOut(), gateway.port());
      return new Running(gateway, simVertx);
    } catch (Exception e) {
      simVertx.close();
      throw e;
    }
  }

  static String demoYaml() throws IOException {
    try (InputStream in = DemoCommand.class.getResourceAsStream("/demo.yaml")) {
      if (in == null) {
        throw new IOException("demo.yaml is missing from the jar");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  private void printBanner(PrintWriter out, int actualPort) {
    String h = host.equals("0.0.0.0") || host.equals("::") ? "127.0.0.1" : host;
    String base = "http://" + (h.contains(":") ? "[" + h + "]" : h) + ":" + actualPort;
    out.println();
    out.println("llmproxy demo is running on " + base);
    out.println("  backends: gpu-fast (TTFT ~80 ms), gpu-steady (~200 ms), gpu-tail (~100 ms, 10% take 2 s more)");
    out.println("  model '" + CLIENT_MODEL + "' is mapped to '" + BACKEND_MODEL + "'");
    out.println("  hedging on: a request with no first token after the backend's p90 TTFT also goes to another");
    out.println("  backend and the first token wins (response headers x-llmproxy-backend, x-llmproxy-hedged;");
    out.println("  llmproxy_hedges_total in /metrics)");
    out.println();
    out.println("Try it:");
    out.println();
    out.println("# a chat completion");
    out.println("curl -s " + base + "/v1/chat/completions -H 'Content-Type: application/json' \\");
    out.println("  -d '{\"model\":\"" + CLIENT_MODEL + "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}'");
    out.println();
    out.println("# the same, streamed (each event arrives as the backend sends it)");
    out.println("curl -sN " + base + "/v1/chat/completions -H 'Content-Type: application/json' \\");
    out.println("  -d '{\"model\":\"" + CLIENT_MODEL + "\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}'");
    out.println();
    out.println("# the models, readiness and metrics");
    out.println("curl -s " + base + "/v1/models");
    out.println("curl -s " + base + "/ready");
    out.println("curl -s " + base + "/metrics | grep llmproxy_requests_total");
    out.println();
    out.println("# with the OpenAI Python SDK");
    out.println("python3 -c 'from openai import OpenAI; c = OpenAI(base_url=\"" + base + "/v1\", api_key=\"none\"); "
        + "print(c.chat.completions.create(model=\"" + CLIENT_MODEL + "\", "
        + "messages=[{\"role\": \"user\", \"content\": \"Hello!\"}]).choices[0].message.content)'");
    out.println();
    out.println("Press Ctrl-C to stop.");
    out.flush();
  }

  private static <T> T await(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }
}
