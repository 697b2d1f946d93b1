package io.llmproxy.bench;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.Locale;
import java.util.Map;
import org.HdrHistogram.Histogram;

/**
 * What one run measured (warm-up excluded): latencies in HdrHistograms of microseconds, counts,
 * and the length of the measured period; and the two ways of printing it, a table and JSON.
 */
public final class BenchResult {
  private static final double[] PERCENTILES = {1, 50, 90, 99, 99.9};

  private final BenchSettings settings;
  private final Recorder r;
  private final double seconds;

  BenchResult(BenchSettings settings, Recorder merged, double seconds) {
    this.settings = settings;
    this.r = merged;
    this.seconds = seconds;
  }

  public long requests() {
    return r.requests;
  }

  public long errors() {
    return r.errorCount();
  }

  public Map<String, Long> errorsByKind() {
    return Map.copyOf(r.errors);
  }

  public double seconds() {
    return seconds;
  }

  public double requestsPerSecond() {
    return r.requests / seconds;
  }

  public double outputTokensPerSecond() {
    return r.outputTokens / seconds;
  }

  public long outputTokens() {
    return r.outputTokens;
  }

  /** TTFT, in microseconds. */
  public Histogram ttftMicros() {
    return r.ttft;
  }

  /** Gaps between token events, in microseconds. */
  public Histogram itlMicros() {
    return r.itl;
  }

  /** Request sent to response ended, in microseconds. */
  public Histogram latencyMicros() {
    return r.latency;
  }

  /** Open loop: how late requests were sent after their scheduled time, in microseconds. */
  public Histogram sendLagMicros() {
    return r.sendLag;
  }

  /** A percentile of a histogram in milliseconds, or NaN when it has no values. */
  public static double ms(Histogram h, double percentile) {
    return h.getTotalCount() == 0 ? Double.NaN : h.getValueAtPercentile(percentile) / 1000.0;
  }

  /** A human-readable report. */
  public String table() {
    StringBuilder b = new StringBuilder();
    b.append(String.format(Locale.ROOT, "%s%s  model=%s stream=%s %s duration=%.0fs%n", settings.baseUrl(),
        settings.path(), settings.model(), settings.stream(), load(), seconds));
    b.append(String.format(Locale.ROOT, "requests %d (%.1f/s), output tokens %d (%.1f/s), errors %d%s%n",
        r.requests, requestsPerSecond(), r.outputTokens, outputTokensPerSecond(), errors(),
        r.errors.isEmpty() ? "" : " " + r.errors));
    b.append(String.format(Locale.ROOT, "%-10s %10s %10s %10s %10s %10s %10s%n", "ms", "p1", "p50", "p90", "p99",
        "p99.9", "max"));
    row(b, "ttft", r.ttft);
    row(b, "itl", r.itl);
    row(b, "latency", r.latency);
    if (settings.openLoop()) {
      row(b, "send lag", r.sendLag);
    }
    return b.toString();
  }

  private String load() {
    return settings.openLoop()
        ? String.format(Locale.ROOT, "rate=%.0f/s (%s)", settings.rate(), settings.poisson() ? "poisson" : "even")
        : "concurrency=" + settings.concurrency();
  }

  private static void row(StringBuilder b, String name, Histogram h) {
    if (h.getTotalCount() == 0) {
      return;
    }
    b.append(String.format(Locale.ROOT, "%-10s", name));
    for (double p : PERCENTILES) {
      b.append(String.format(Locale.ROOT, " %10.3f", ms(h, p)));
    }
    b.append(String.format(Locale.ROOT, " %10.3f%n", h.getMaxValue() / 1000.0));
  }

  /** The report as one JSON object, for scripts. Times in milliseconds. */
  public String json() {
    StringWriter w = new StringWriter();
    try (JsonGenerator g = new JsonFactory().createGenerator(w)) {
      g.writeStartObject();
      g.writeStringField("url", settings.baseUrl() + settings.path());
      g.writeBooleanField("stream", settings.stream());
      if (settings.openLoop()) {
        g.writeNumberField("rate", settings.rate());
        g.writeStringField("arrivals", settings.poisson() ? "poisson" : "even");
      } else {
        g.writeNumberField("concurrency", settings.concurrency());
      }
      g.writeNumberField("seconds", seconds);
      g.writeNumberField("requests", r.requests);
      g.writeNumberField("requests_per_second", requestsPerSecond());
      g.writeNumberField("output_tokens", r.outputTokens);
      g.writeNumberField("output_tokens_per_second", outputTokensPerSecond());
      g.writeNumberField("errors", errors());
      g.writeObjectFieldStart("errors_by_kind");
      for (Map.Entry<String, Long> e : r.errors.entrySet()) {
        g.writeNumberField(e.getKey(), e.getValue());
      }
      g.writeEndObject();
      histogram(g, "ttft_ms", r.ttft);
      histogram(g, "itl_ms", r.itl);
      histogram(g, "latency_ms", r.latency);
      if (settings.openLoop()) {
        histogram(g, "send_lag_ms", r.sendLag);
      }
      g.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return w.toString();
  }

  private static void histogram(JsonGenerator g, String name, Histogram h) throws IOException {
    g.writeObjectFieldStart(name);
    g.writeNumberField("count", h.getTotalCount());
    if (h.getTotalCount() > 0) {
      g.writeNumberField("p1", ms(h, 1));
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
