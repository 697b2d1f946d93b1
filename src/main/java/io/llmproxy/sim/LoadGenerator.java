package io.llmproxy.sim;

import static java.util.Objects.requireNonNull;

import io.llmproxy.proxy.BodyScanner;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import java.net.URI;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.ConcurrentHistogram;
import org.HdrHistogram.Histogram;

/**
 * A closed-loop load generator for OpenAI-compatible endpoints: {@code concurrency} virtual users
 * each send a request, wait for the whole response, and send the next, until the duration is over.
 * It measures what a client sees: time to first token (the first SSE event carrying output, found
 * with the gateway's own {@link BodyScanner}; the first body byte when not streaming), the gaps
 * between output events, and total latency, in HdrHistogram microsecond histograms.
 */
public final class LoadGenerator {

  /** What to send and for how long. */
  public record Settings(
      URI baseUrl,
      String path,
      String model,
      boolean stream,
      int concurrency,
      Duration duration,
      Duration warmup,
      Duration rampUp,
      int maxTokens,
      int promptChars) {
    public Settings {
      requireNonNull(baseUrl, "baseUrl");
      if (concurrency < 1) {
        throw new IllegalArgumentException("concurrency must be at least 1");
      }
    }
  }

  /** The measurements of one run (warm-up excluded). Histograms are in microseconds. */
  public record Result(
      long requests,
      long errors,
      Map<String, Long> errorsByKind,
      double seconds,
      long outputEvents,
      Histogram ttftMicros,
      Histogram latencyMicros,
      Histogram itlMicros) {
    public double requestsPerSecond() {
      return requests / seconds;
    }

    public double outputEventsPerSecond() {
      return outputEvents / seconds;
    }
  }

  private final Vertx vertx;
  private final Settings settings;
  private final HttpClientAgent http;
  private final Buffer body;
  private final ConcurrentHistogram ttft = histogram();
  private final ConcurrentHistogram latency = histogram();
  private final ConcurrentHistogram itl = histogram();
  private final LongAdder requests = new LongAdder();
  private final LongAdder outputEvents = new LongAdder();
  private final Map<String, LongAdder> errors = new ConcurrentHashMap<>();
  private final AtomicLong running = new AtomicLong();
  private volatile long measureFromNanos;
  private volatile long stopAtNanos;

  public LoadGenerator(Vertx vertx, Settings settings) {
    this.vertx = requireNonNull(vertx, "vertx");
    this.settings = settings;
    URI u = settings.baseUrl();
    int port = u.getPort() > 0 ? u.getPort() : ("https".equals(u.getScheme()) ? 443 : 80);
    this.http = vertx.createHttpClient(new HttpClientOptions()
            .setDefaultHost(u.getHost()).setDefaultPort(port).setSsl("https".equals(u.getScheme()))
            .setKeepAlive(true).setTcpNoDelay(true).setMaxChunkSize(64 * 1024),
        new PoolOptions().setHttp1MaxSize(settings.concurrency()).setEventLoopSize(0));
    this.body = Buffer.buffer(requestBody(settings));
  }

  private static ConcurrentHistogram histogram() {
    return new ConcurrentHistogram(3_600_000_000L, 3);
  }

  static String requestBody(Settings s) {
    String prompt = "Hello ".repeat(Math.max(1, s.promptChars() / 6));
    StringBuilder b = new StringBuilder(prompt.length() + 200).append("{\"model\":\"").append(s.model()).append('"');
    if (s.path().endsWith("/completions") && !s.path().endsWith("/chat/completions")) {
      b.append(",\"prompt\":\"").append(prompt).append('"');
    } else {
      b.append(",\"messages\":[{\"role\":\"user\",\"content\":\"").append(prompt).append("\"}]");
    }
    if (s.maxTokens() > 0) {
      b.append(",\"max_tokens\":").append(s.maxTokens());
    }
    return b.append(",\"stream\":").append(s.stream()).append('}').toString();
  }

  /** Runs the warm-up and the measured period; completes with the measured period's results. */
  public Future<Result> run() {
    long now = System.nanoTime();
    measureFromNanos = now + settings.warmup().toNanos();
    stopAtNanos = measureFromNanos + settings.duration().toNanos();
    Promise<Result> done = Promise.promise();
    running.set(settings.concurrency());
    long rampNanos = settings.rampUp().toNanos();
    for (int i = 0; i < settings.concurrency(); i++) {
      // Users start spread over the ramp-up, so that fixed-cadence streams are not all in phase.
      long delayMs = java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(rampNanos * i / settings.concurrency());
      if (delayMs == 0) {
        next(done);
      } else {
        vertx.setTimer(delayMs, id -> next(done));
      }
    }
    return done.future();
  }

  private void next(Promise<Result> done) {
    long start = System.nanoTime();
    if (start >= stopAtNanos) {
      if (running.decrementAndGet() == 0) {
        http.close().onComplete(ar -> done.complete(result()));
      }
      return;
    }
    RequestOptions o = new RequestOptions().setMethod(HttpMethod.POST).setURI(settings.path())
        .putHeader(HttpHeaders.CONTENT_TYPE, "application/json");
    http.request(o).onComplete(ar -> {
      if (ar.failed()) {
        fail(start, "connect", done);
        return;
      }
      ar.result().send(body).onComplete(rar -> {
        if (rar.failed()) {
          fail(start, "reset", done);
        } else {
          read(rar.result(), start, done);
        }
      });
    });
  }

  private void read(HttpClientResponse resp, long start, Promise<Result> done) {
    boolean measured = start >= measureFromNanos;
    boolean ok = resp.statusCode() / 100 == 2;
    BodyScanner scanner = BodyScanner.isEventStream(resp.getHeader(HttpHeaders.CONTENT_TYPE))
        ? BodyScanner.sse(false) : BodyScanner.plain();
    long[] last = {0};
    int[] seen = {0};
    boolean[] finished = {false}; // an exception after the end must not start a second request
    resp.handler(chunk -> {
      long now = System.nanoTime();
      if (scanner.feed(chunk) && measured && ok) {
        ttft.recordValue(Math.max(1, (now - start) / 1000));
      }
      int events = scanner.outputEvents();
      if (events > seen[0]) {
        if (last[0] != 0 && measured && ok) {
          // Events that arrive together count as gaps of zero after the first: batching shows.
          itl.recordValue(Math.max(1, (now - last[0]) / 1000));
          for (int i = seen[0] + 1; i < events; i++) {
            itl.recordValue(1);
          }
        }
        last[0] = now;
        if (measured) {
          outputEvents.add(events - seen[0]);
        }
        seen[0] = events;
      }
    });
    resp.exceptionHandler(t -> {
      if (!finished[0]) {
        finished[0] = true;
        fail(start, "reset", done);
      }
    });
    resp.endHandler(v -> {
      if (finished[0]) {
        return;
      }
      finished[0] = true;
      if (!ok) {
        fail(start, "http_" + resp.statusCode(), done);
        return;
      }
      if (measured) {
        latency.recordValue(Math.max(1, (System.nanoTime() - start) / 1000));
        requests.increment();
      }
      next(done);
    });
  }

  private void fail(long start, String kind, Promise<Result> done) {
    if (start >= measureFromNanos) {
      errors.computeIfAbsent(kind, k -> new LongAdder()).increment();
    }
    // Back off a little after a connect error so a dead endpoint does not spin the loop.
    vertx.setTimer(kind.equals("connect") ? 10 : 1, id -> next(done));
  }

  private Result result() {
    Map<String, Long> byKind = new java.util.TreeMap<>();
    errors.forEach((k, v) -> byKind.put(k, v.sum()));
    long errorCount = byKind.values().stream().mapToLong(Long::longValue).sum();
    return new Result(requests.sum(), errorCount, byKind, settings.duration().toNanos() / 1e9,
        outputEvents.sum(), ttft.copy(), latency.copy(), itl.copy());
  }
}
