package io.llmproxy.bench;

import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.Histogram;

/**
 * The measurements of one event loop of the load generator: HdrHistograms in microseconds and
 * counters. Not thread-safe: each event loop records into its own, and {@link #merge} adds them up
 * at the end, so recording costs no atomic operation.
 */
final class Recorder {
  /** One hour, in microseconds: the largest value tracked. */
  static final long MAX_MICROS = 3_600_000_000L;

  final Histogram ttft = histogram();
  final Histogram itl = histogram();
  final Histogram latency = histogram();
  /** How late the open loop sent each request after its scheduled time. */
  final Histogram sendLag = histogram();
  long requests;
  long outputTokens;
  long outputEvents;
  final Map<String, Long> errors = new TreeMap<>();

  private static Histogram histogram() {
    return new Histogram(MAX_MICROS, 3);
  }

  static long micros(long nanos) {
    return Math.min(MAX_MICROS, Math.max(0, nanos / 1_000));
  }

  void ttft(long nanos) {
    ttft.recordValue(micros(nanos));
  }

  /** A gap between two output events; events that arrive in one read are gaps of 0. */
  void itl(long nanos) {
    itl.recordValue(micros(nanos));
  }

  void lag(long nanos) {
    sendLag.recordValue(micros(nanos));
  }

  /** A request answered 2xx, whole. */
  void ok(long latencyNanos, long tokens, long events) {
    latency.recordValue(micros(latencyNanos));
    requests++;
    outputTokens += tokens;
    outputEvents += events;
  }

  void error(String kind) {
    errors.merge(kind, 1L, Long::sum);
  }

  long errorCount() {
    long n = 0;
    for (long v : errors.values()) {
      n += v;
    }
    return n;
  }

  void merge(Recorder other) {
    ttft.add(other.ttft);
    itl.add(other.itl);
    latency.add(other.latency);
    sendLag.add(other.sendLag);
    requests += other.requests;
    outputTokens += other.outputTokens;
    outputEvents += other.outputEvents;
    other.errors.forEach((k, v) -> errors.merge(k, v, Long::sum));
  }
}
