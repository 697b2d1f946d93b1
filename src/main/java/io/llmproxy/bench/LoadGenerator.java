package io.llmproxy.bench;

import static java.util.Objects.requireNonNull;

import io.llmproxy.api.PerEventLoop;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
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
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * A load generator for OpenAI-compatible endpoints, in the spirit of vLLM's {@code bench serve}.
 *
 * <ul>
 *   <li><b>Closed loop</b> ({@code rate} 0): {@code concurrency} users each send a request, wait for
 *       the whole response, and send the next.</li>
 *   <li><b>Open loop</b>: requests leave at {@code rate} per second, evenly spaced or with Poisson
 *       arrivals, whether or not earlier ones have ended. Latency counts from the actual send; how
 *       late each send was against its schedule is reported too, so a generator that cannot keep up
 *       shows.</li>
 * </ul>
 *
 * <p>The work is split over one driver per event loop, each with its own connection pool and its own
 * {@link Recorder}, merged at the end: nothing is shared on the request path but a few counters for
 * the progress line. A request is measured when it starts inside the measured period (after the
 * warm-up); requests still running at its end are waited for.
 */
public final class LoadGenerator {
  /** Longest silence on a response before it counts as a {@code timeout} error. */
  static final long IDLE_TIMEOUT_MS = 120_000;

  private final Vertx vertx;
  private final BenchSettings settings;
  private final int drivers;
  private final Buffer body;
  private final LongAdder completed = new LongAdder();
  private final LongAdder failed = new LongAdder();
  private final AtomicInteger inflight = new AtomicInteger();
  private volatile long startNanos;
  private volatile long measureFromNanos;
  private volatile long stopAtNanos;

  /** What the progress line shows; counts include the warm-up. */
  public record Progress(double elapsedSeconds, boolean measuring, long completed, long errors, int inflight) {}

  /**
   * @param drivers how many event loops to drive the load from (the Vert.x instance needs at least
   *                as many)
   */
  public LoadGenerator(Vertx vertx, BenchSettings settings, int drivers) {
    this.vertx = requireNonNull(vertx, "vertx");
    this.settings = requireNonNull(settings, "settings");
    if (drivers < 1) {
      throw new IllegalArgumentException("drivers must be at least 1");
    }
    // A closed loop with fewer users than event loops leaves the extra loops idle.
    this.drivers = settings.openLoop() ? drivers : Math.min(drivers, settings.concurrency());
    this.body = Buffer.buffer(settings.requestBody());
  }

  public Progress progress() {
    long now = System.nanoTime();
    long start = startNanos;
    return new Progress(start == 0 ? 0 : (now - start) / 1e9, start != 0 && now >= measureFromNanos,
        completed.sum(), failed.sum(), inflight.get());
  }

  /** Runs the warm-up and the measured period; completes with what the measured period saw. */
  public Future<BenchResult> run() {
    long now = System.nanoTime();
    startNanos = now;
    measureFromNanos = now + settings.warmup().toNanos();
    stopAtNanos = measureFromNanos + settings.duration().toNanos();
    int[] next = {0};
    return PerEventLoop.deploy(vertx, drivers, () -> new Driver(next[0]++))
        .compose(loops -> Future.all(loops.deployed().stream().map(d -> d.done.future()).toList())
            .eventually(loops::undeploy)
            .map(v -> {
              Recorder merged = new Recorder();
              for (Driver d : loops.deployed()) {
                merged.merge(d.recorder);
              }
              return new BenchResult(settings, merged, settings.duration().toNanos() / 1e9);
            }));
  }

  /** One event loop's share of the load. */
  private final class Driver extends VerticleBase {
    private final int index;
    private final Recorder recorder = new Recorder();
    private final Promise<Void> done = Promise.promise();
    private HttpClientAgent http;
    private int running;
    private double gapNanos;
    private long nextDueNanos;
    private int maxInflight;

    Driver(int index) {
      this.index = index;
    }

    /** Users (closed loop) or the share of in-flight requests (open loop) this driver has. */
    private int share(int total) {
      return total / drivers + (index < total % drivers ? 1 : 0);
    }

    @Override
    public Future<?> start() {
      URI u = settings.baseUrl();
      boolean ssl = "https".equalsIgnoreCase(u.getScheme());
      // Open loop too, the pool holds `concurrency` connections; requests beyond them wait in the
      // pool's queue (their wait is in their latency). Vert.x looks for a free connection by
      // walking the pool, so a pool of thousands would make the generator the bottleneck.
      int connections = Math.max(1, share(settings.concurrency()));
      http = vertx.createHttpClient(new HttpClientOptions()
              .setDefaultHost(u.getHost()).setDefaultPort(u.getPort() > 0 ? u.getPort() : ssl ? 443 : 80)
              .setSsl(ssl).setTrustAll(true).setVerifyHost(false)
              .setKeepAlive(true).setTcpNoDelay(true).setPipelining(false)
              .setIdleTimeout((int) IDLE_TIMEOUT_MS).setIdleTimeoutUnit(TimeUnit.MILLISECONDS),
          new PoolOptions().setHttp1MaxSize(connections).setEventLoopSize(0).setMaxWaitQueueSize(-1));
      if (settings.openLoop()) {
        maxInflight = Math.max(1, share(settings.maxInflight()));
        gapNanos = 1e9 * drivers / settings.rate();
        // The drivers' schedules interleave instead of firing together.
        nextDueNanos = startNanos + (long) (gapNanos * index / drivers);
        tick();
      } else {
        int users = share(settings.concurrency());
        running = users;
        long ramp = settings.rampUp().toNanos();
        for (int i = 0; i < users; i++) {
          long global = (long) i * drivers + index;
          long delayMs = TimeUnit.NANOSECONDS.toMillis(ramp * global / settings.concurrency());
          if (delayMs == 0) {
            nextClosed();
          } else {
            vertx.setTimer(delayMs, id -> nextClosed());
          }
        }
      }
      return Future.succeededFuture();
    }

    @Override
    public Future<?> stop() {
      return http.close();
    }

    // ---- closed loop

    private void nextClosed() {
      long now = System.nanoTime();
      if (now >= stopAtNanos) {
        if (--running == 0) {
          done.complete();
        }
        return;
      }
      send(now, now >= measureFromNanos, this::nextClosed);
    }

    // ---- open loop

    private void tick() {
      long now = System.nanoTime();
      while (nextDueNanos <= now && nextDueNanos < stopAtNanos) {
        long due = nextDueNanos;
        boolean measured = due >= measureFromNanos;
        nextDueNanos += settings.poisson()
            ? (long) (-Math.log(1 - ThreadLocalRandom.current().nextDouble()) * gapNanos)
            : (long) gapNanos;
        if (running >= maxInflight) {
          if (measured) {
            recorder.error("overload");
          }
          failed.increment();
          continue;
        }
        running++;
        if (measured) {
          recorder.lag(now - due);
        }
        send(now, measured, this::endedOpen);
      }
      if (nextDueNanos >= stopAtNanos) {
        if (running == 0) {
          done.tryComplete();
        }
        return;
      }
      long ms = Math.max(1, TimeUnit.NANOSECONDS.toMillis(nextDueNanos - System.nanoTime()));
      vertx.setTimer(ms, id -> tick());
    }

    private void endedOpen() {
      if (--running == 0 && nextDueNanos >= stopAtNanos) {
        done.tryComplete();
      }
    }

    // ---- one request

    private void send(long start, boolean measured, Runnable then) {
      inflight.incrementAndGet();
      Recorder into = measured ? recorder : null;
      RequestOptions o = new RequestOptions().setMethod(HttpMethod.POST).setURI(settings.path())
          .putHeader(HttpHeaders.CONTENT_TYPE, "application/json");
      settings.headers().forEach(o::putHeader);
      http.request(o).onComplete(ar -> {
        if (ar.failed()) {
          failed(into, ar.cause() instanceof TimeoutException ? "timeout" : "connect", then, true);
          return;
        }
        ar.result().send(body).onComplete(rar -> {
          if (rar.failed()) {
            failed(into, kind(rar.cause()), then, false);
          } else {
            read(rar.result(), start, into, then);
          }
        });
      });
    }

    private void read(HttpClientResponse resp, long start, Recorder into, Runnable then) {
      int status = resp.statusCode();
      boolean ok = status / 100 == 2;
      ResponseTimer timer = new ResponseTimer(start, resp.getHeader(HttpHeaders.CONTENT_TYPE));
      boolean[] ended = {false}; // an exception after the end must not end the request twice
      resp.handler(chunk -> timer.chunk(chunk, System.nanoTime(), ok ? into : null));
      resp.exceptionHandler(t -> {
        if (!ended[0]) {
          ended[0] = true;
          failed(into, kind(t), then, false);
        }
      });
      resp.endHandler(v -> {
        if (ended[0]) {
          return;
        }
        ended[0] = true;
        if (!ok) {
          failed(into, "http_" + status, then, false);
          return;
        }
        timer.end(System.nanoTime(), into);
        inflight.decrementAndGet();
        completed.increment();
        then.run();
      });
    }

    private String kind(Throwable t) {
      return t instanceof TimeoutException ? "timeout" : "reset";
    }

    private void failed(Recorder into, String kind, Runnable then, boolean connect) {
      inflight.decrementAndGet();
      failed.increment();
      if (into != null) {
        into.error(kind);
      }
      // A closed-loop user backs off a little after a connection error, so that a dead endpoint
      // does not spin the loop.
      if (connect && !settings.openLoop()) {
        vertx.setTimer(10, id -> then.run());
      } else {
        then.run();
      }
    }
  }
}
