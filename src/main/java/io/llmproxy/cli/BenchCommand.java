package io.llmproxy.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import io.llmproxy.sim.LoadGenerator;
import io.llmproxy.sim.LoadGenerator.Result;
import io.llmproxy.sim.LoadGenerator.Settings;
import io.llmproxy.sim.SimDuration;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code llmproxy bench}: closed-loop load against any OpenAI-compatible endpoint, reporting TTFT,
 * inter-token gaps, latency percentiles and throughput.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, showDefaultValues = true,
    description = "Load-test an OpenAI-compatible endpoint (closed loop): TTFT, inter-token latency, latency, throughput.")
public final class BenchCommand implements Callable<Integer> {
  @Option(names = "--url", defaultValue = "http://127.0.0.1:8080", description = "Base URL of the endpoint.")
  URI url;

  @Option(names = "--path", defaultValue = "/v1/chat/completions", description = "Request path.")
  String path;

  @Option(names = "--model", defaultValue = "sim-model", description = "Model to ask for.")
  String model;

  @Option(names = "--stream", description = "Ask for streaming responses.")
  boolean stream;

  @Option(names = {"-c", "--concurrency"}, defaultValue = "16", description = "Requests in flight at once.")
  int concurrency;

  @Option(names = {"-d", "--duration"}, defaultValue = "10s", description = "Measured duration.")
  String duration;

  @Option(names = "--warmup", defaultValue = "2s", description = "Warm-up before measuring.")
  String warmup;

  @Option(names = "--ramp-up", defaultValue = "0s",
      description = "Spread the users' first requests over this long (desynchronises fixed-cadence streams).")
  String rampUp;

  @Option(names = "--max-tokens", defaultValue = "0", description = "max_tokens to ask for (0 = not sent).")
  int maxTokens;

  @Option(names = "--prompt-chars", defaultValue = "64", description = "Approximate prompt length in characters.")
  int promptChars;

  @Option(names = "--json", description = "Print the results as JSON.")
  boolean json;

  @Spec
  CommandSpec spec;

  @Override
  public Integer call() throws Exception {
    Duration measured = SimDuration.parse(duration);
    Settings s = new Settings(url, path, model, stream, concurrency, measured, SimDuration.parse(warmup),
        SimDuration.parse(rampUp), maxTokens, promptChars);
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(Runtime.getRuntime().availableProcessors())
        .setPreferNativeTransport(true));
    try {
      Result r = new LoadGenerator(vertx, s).run().toCompletionStage().toCompletableFuture()
          .get(measured.toMillis() + s.warmup().toMillis() + 120_000, TimeUnit.MILLISECONDS);
      PrintWriter out = spec.commandLine().getOut();
      out.println(json ? toJson(s, r) : table(s, r));
      out.flush();
      return r.requests() == 0 ? 1 : 0;
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  static String table(Settings s, Result r) {
    StringBuilder b = new StringBuilder();
    b.append(String.format("%s%s  model=%s stream=%s concurrency=%d duration=%.0fs%n", s.baseUrl(), s.path(),
        s.model(), s.stream(), s.concurrency(), r.seconds()));
    b.append(String.format("requests %d (%.1f/s), errors %d %s, output events %.1f/s%n", r.requests(),
        r.requestsPerSecond(), r.errors(), r.errorsByKind().isEmpty() ? "" : r.errorsByKind(),
        r.outputEventsPerSecond()));
    b.append(String.format("%-10s %10s %10s %10s %10s %10s%n", "ms", "p50", "p90", "p99", "p99.9", "max"));
    row(b, "ttft", r.ttftMicros());
    row(b, "itl", r.itlMicros());
    row(b, "latency", r.latencyMicros());
    return b.toString();
  }

  private static void row(StringBuilder b, String name, Histogram h) {
    if (h.getTotalCount() == 0) {
      return;
    }
    b.append(String.format("%-10s %10.3f %10.3f %10.3f %10.3f %10.3f%n", name, ms(h, 50), ms(h, 90), ms(h, 99),
        ms(h, 99.9), h.getMaxValue() / 1000.0));
  }

  private static double ms(Histogram h, double p) {
    return h.getValueAtPercentile(p) / 1000.0;
  }

  static String toJson(Settings s, Result r) throws IOException {
    StringWriter w = new StringWriter();
    try (JsonGenerator g = new JsonFactory().createGenerator(w)) {
      g.writeStartObject();
      g.writeStringField("url", s.baseUrl() + s.path());
      g.writeBooleanField("stream", s.stream());
      g.writeNumberField("concurrency", s.concurrency());
      g.writeNumberField("seconds", r.seconds());
      g.writeNumberField("requests", r.requests());
      g.writeNumberField("requests_per_second", r.requestsPerSecond());
      g.writeNumberField("errors", r.errors());
      g.writeObjectFieldStart("errors_by_kind");
      for (var e : r.errorsByKind().entrySet()) {
        g.writeNumberField(e.getKey(), e.getValue());
      }
      g.writeEndObject();
      g.writeNumberField("output_events_per_second", r.outputEventsPerSecond());
      histogram(g, "ttft_ms", r.ttftMicros());
      histogram(g, "itl_ms", r.itlMicros());
      histogram(g, "latency_ms", r.latencyMicros());
      g.writeEndObject();
    }
    return w.toString();
  }

  private static void histogram(JsonGenerator g, String name, Histogram h) throws IOException {
    g.writeObjectFieldStart(name);
    g.writeNumberField("count", h.getTotalCount());
    if (h.getTotalCount() > 0) {
      g.writeNumberField("p50", ms(h, 50));
      g.writeNumberField("p90", ms(h, 90));
      g.writeNumberField("p99", ms(h, 99));
      g.writeNumberField("p99_9", ms(h, 99.9));
      g.writeNumberField("max", h.getMaxValue() / 1000.0);
      g.writeNumberField("mean", h.getMean() / 1000.0);
    }
    g.writeEndObject();
  }
}
