package io.llmproxy.cli;

import io.llmproxy.api.VertxSetup;
import io.llmproxy.bench.BenchResult;
import io.llmproxy.bench.BenchSettings;
import io.llmproxy.bench.IdleConnections;
import io.llmproxy.bench.LoadGenerator;
import io.llmproxy.cli.SimulateCommand.DurationConverter;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.PrintWriter;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code llmproxy bench}: load against any OpenAI-compatible endpoint (SPEC §2), closed or open loop,
 * reporting TTFT, inter-token latency, latency percentiles, throughput and errors by kind, with a
 * progress line on standard error while it runs. {@code --idle-connections} runs the idle
 * keep-alive scenario instead.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, showDefaultValues = true, sortOptions = false,
    description = {"Load-test an OpenAI-compatible endpoint: TTFT, inter-token latency, latency, throughput.",
        "Closed loop with -c (each user sends its next request when the last one ended), or open loop with --rate."})
public final class BenchCommand implements Callable<Integer> {
  @Option(names = "--url", defaultValue = "http://127.0.0.1:8080", description = "Base URL of the endpoint.")
  URI url;

  @Option(names = "--path", defaultValue = "/v1/chat/completions",
      description = "Request path: /v1/chat/completions or /v1/completions (a prompt instead of messages).")
  String path;

  @Option(names = "--model", defaultValue = "sim-model", description = "Model to ask for.")
  String model;

  @Option(names = "--stream", description = "Ask for streaming responses.")
  boolean stream;

  @Option(names = {"-c", "--concurrency"}, defaultValue = "16",
      description = "Closed loop: requests in flight at once. Open loop: connections to the endpoint.")
  int concurrency;

  @Option(names = "--rate", defaultValue = "0",
      description = "Open loop: requests per second, sent whether or not earlier ones ended (0 = closed loop).")
  double rate;

  @Option(names = "--poisson", description = "Open loop: Poisson arrivals (exponential gaps) instead of even spacing.")
  boolean poisson;

  @Option(names = "--max-inflight", defaultValue = "10000",
      description = "Open loop: most requests in flight; a request due beyond it is not sent and counts as "
          + "an 'overload' error.")
  int maxInflight;

  @Option(names = {"-d", "--duration"}, defaultValue = "10s", converter = DurationConverter.class,
      description = "Measured duration.")
  Duration duration;

  @Option(names = "--warmup", defaultValue = "2s", converter = DurationConverter.class,
      description = "Load sent before measuring, not measured.")
  Duration warmup;

  @Option(names = "--ramp-up", defaultValue = "0s", converter = DurationConverter.class,
      description = "Closed loop: spread the users' first requests over this long (desynchronises "
          + "fixed-cadence streams). Open loop: raise the rate from 5%% to --rate over this long.")
  Duration rampUp;

  @Option(names = "--max-tokens", defaultValue = "0", description = "max_tokens to ask for (0 = not sent).")
  int maxTokens;

  @Option(names = "--prompt-chars", defaultValue = "64", description = "Prompt length in characters (~4 per token).")
  int promptChars;

  @Option(names = "--no-usage", negatable = false,
      description = "Streams do not ask for stream_options.include_usage (output tokens are then counted from events).")
  boolean noUsage;

  @Option(names = "--idle-connections", defaultValue = "0",
      description = "Instead of a load: open this many keep-alive connections, send a request on each, hold "
          + "them idle for --hold, then send one more on each.")
  int idleConnections;

  @Option(names = "--hold", defaultValue = "30s", converter = DurationConverter.class,
      description = "With --idle-connections: how long the connections stay idle.")
  Duration hold;

  @Option(names = {"-H", "--header"}, description = "A request header, 'Name: value' (repeatable), for example "
      + "'Authorization: Bearer sk-...'.")
  List<String> header = new ArrayList<>();

  @Option(names = "--json", description = "Print the results as JSON.")
  boolean json;

  @Option(names = "--no-progress", negatable = false, description = "No progress line on standard error.")
  boolean noProgress;

  @Spec
  CommandSpec spec;

  private static Map<String, String> headers(List<String> lines) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String line : lines) {
      int colon = line.indexOf(':');
      if (colon <= 0) {
        throw new IllegalArgumentException("a header is 'Name: value', got '" + line + "'");
      }
      out.put(line.substring(0, colon).strip(), line.substring(colon + 1).strip());
    }
    return out;
  }

  @Override
  public Integer call() throws Exception {
    BenchSettings settings;
    try {
      settings = new BenchSettings(url, path, model, stream, concurrency, rate, poisson, maxInflight, duration,
          warmup, rampUp, maxTokens, promptChars, !noUsage, headers(header));
    } catch (IllegalArgumentException e) {
      throw new ParameterException(spec.commandLine(), e.getMessage());
    }
    int loops = Runtime.getRuntime().availableProcessors();
    Vertx vertx = Vertx.vertx(VertxSetup.options(loops).setPreferNativeTransport(true));
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    try {
      if (idleConnections > 0) {
        IdleConnections idle = new IdleConnections(vertx, settings, idleConnections, hold);
        IdleConnections.Result r = await(idle.run(), hold.plusMinutes(5),
            () -> String.format(Locale.ROOT, "%d connections open", idle.open()), err);
        out.println(json ? r.json() : String.format(Locale.ROOT,
            "%d connections: %d opened, %d closed while idle, %d errors %s: %s", r.connections(), r.opened(),
            r.closedIdle(), r.errorCount(), r.errors(), r.held() ? "held" : "NOT held"));
        out.flush();
        return r.held() ? 0 : 1;
      }
      LoadGenerator generator = new LoadGenerator(vertx, settings, loops);
      BenchResult r = await(generator.run(), duration.plus(warmup).plusMinutes(3), () -> progressLine(generator), err);
      out.println(json ? r.json() : r.table());
      out.flush();
      return r.requests() == 0 ? 1 : 0;
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  private static String progressLine(LoadGenerator g) {
    LoadGenerator.Progress p = g.progress();
    return String.format(Locale.ROOT, "%5.1fs %-9s %,d done (%,.0f/s), %,d errors, %,d in flight", p.elapsedSeconds(),
        p.measuring() ? "measuring" : "warm-up", p.completed(), p.elapsedSeconds() > 0 ? p.completed() / p.elapsedSeconds() : 0,
        p.errors(), p.inflight());
  }

  /** Waits for {@code f}, printing {@code progress} on standard error every second unless told not to. */
  private <T> T await(Future<T> f, Duration timeout, Supplier<String> progress, PrintWriter err) throws Exception {
    boolean tty = System.console() != null;
    long deadline = System.nanoTime() + timeout.toNanos();
    var cf = f.toCompletionStage().toCompletableFuture();
    while (true) {
      try {
        T result = cf.get(1, TimeUnit.SECONDS);
        if (!noProgress && tty) {
          err.print("\r\033[K");
          err.flush();
        }
        return result;
      } catch (java.util.concurrent.TimeoutException e) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("the run did not finish within " + timeout.toSeconds() + " s");
        }
        if (!noProgress) {
          err.print(tty ? "\r\033[K" + progress.get() : progress.get() + "\n");
          err.flush();
        }
      }
    }
  }
}
