package io.llmproxy.bench;

import static java.util.Objects.requireNonNull;

import io.llmproxy.api.PerEventLoop;
import io.llmproxy.config.BackendConfig;
import io.llmproxy.proxy.Timeouts;
import io.llmproxy.proxy.UpstreamClient;
import io.llmproxy.proxy.UpstreamConnection;
import io.llmproxy.routing.Backend;
import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpVersion;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.buffer.BufferInternal;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * A load generator for OpenAI-compatible endpoints, in the spirit of vLLM's {@code bench serve}.
 *
 * <ul>
 *   <li><b>Closed loop</b> ({@code rate} 0): {@code concurrency} users each send a request, wait for
 *       the whole response, and send the next.</li>
 *   <li><b>Open loop</b>: requests leave at {@code rate} per second, evenly spaced or with Poisson
 *       arrivals, whether or not earlier ones have ended, each at its own scheduled time (the event
 *       loop's scheduler is precise to the nanosecond; a millisecond timer would send what falls
 *       due within each millisecond in one burst). Latency counts from the actual send; how late
 *       each send was against its schedule is reported too, so a generator that cannot keep up
 *       shows.</li>
 * </ul>
 *
 * <p>The work is split over one driver per event loop, each with its own connection pool and its own
 * {@link Recorder}, merged at the end: nothing is shared on the request path but a few counters for
 * the progress line. Requests go out on the gateway's own upstream connections ({@link
 * UpstreamClient}, Netty's HTTP/1.1 codec on the driver's loop), whose CPU per request is a fraction
 * of Vert.x's HTTP client's: the generator shares the machine with what it measures, and every
 * microsecond it spends is one the endpoint does not get. A request is measured when it starts
 * inside the measured period (after the warm-up); requests still running at its end are waited for.
 */
public final class LoadGenerator {
  /** Longest silence on a response before it counts as a {@code timeout} error. */
  static final long IDLE_TIMEOUT_MS = 120_000;
  /** Longest wait for a connection (a new one, or a free one at the pool's cap) before a {@code connect} error. */
  static final long CONNECT_TIMEOUT_MS = 60_000;
  /** Open loop with a ramp-up: the share of the rate it starts at. */
  static final double MIN_RAMP_SHARE = 0.05;

  private final Vertx vertx;
  private final BenchSettings settings;
  private final int drivers;
  private final Buffer body;
  private final Backend endpoint;
  private final Timeouts timeouts = new Timeouts();
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
    this.endpoint = new Backend(new BackendConfig(settings.baseUrl(), "endpoint", 1, List.of(), null, null, Map.of(), 0),
        0, false);
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
    private UpstreamClient pool;
    private HttpRequest head;
    private int running;
    private double gapNanos;
    private long rampNanos;
    private long nextDueNanos;
    private int maxInflight;
    /** The open loop's clock: this driver's event loop, whose scheduler is precise to the nanosecond. */
    private EventLoop loop;
    /** Runs {@link #tick} on this driver's context, from {@link #loop}'s scheduler. */
    private Runnable ticker;

    Driver(int index) {
      this.index = index;
    }

    /** Users (closed loop) or the share of in-flight requests (open loop) this driver has. */
    private int share(int total) {
      return total / drivers + (index < total % drivers ? 1 : 0);
    }

    @Override
    public Future<?> start() {
      // Open loop too, the pool holds `concurrency` connections; requests beyond them wait for one
      // (their wait is in their latency).
      int connections = Math.max(1, share(settings.concurrency()));
      pool = new UpstreamClient(context, new UpstreamClient.Limits(connections,
          TimeUnit.MILLISECONDS.toNanos(IDLE_TIMEOUT_MS), -1, new UpstreamClient.Trust.Any()));
      head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, endpoint.target(settings.path()));
      head.headers().set(HttpHeaderNames.HOST, endpoint.authority())
          .set(HttpHeaderNames.CONTENT_TYPE, "application/json")
          .set(HttpHeaderNames.CONTENT_LENGTH, body.length());
      settings.headers().forEach(head.headers()::set);
      if (settings.openLoop()) {
        maxInflight = Math.max(1, share(settings.maxInflight()));
        gapNanos = 1e9 * drivers / settings.rate();
        rampNanos = settings.rampUp().toNanos();
        // The drivers' schedules interleave instead of firing together.
        nextDueNanos = startNanos + (long) (gapNanos * index / drivers);
        ContextInternal ctx = (ContextInternal) context;
        loop = ctx.nettyEventLoop();
        Runnable tick = this::tick;
        ticker = () -> ctx.dispatch(tick);
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
      return pool.close();
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
        double gap = settings.poisson() ? -Math.log(1 - ThreadLocalRandom.current().nextDouble()) * gapNanos : gapNanos;
        long sinceStart = due - startNanos;
        if (sinceStart < rampNanos) {
          gap /= Math.max(MIN_RAMP_SHARE, (double) sinceStart / rampNanos); // the rate rises evenly
        }
        nextDueNanos += (long) gap;
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
      // The next request leaves when it is due, not with the others due in the same millisecond: at
      // 17,000 requests/s, a millisecond timer sent bursts of 8 or 9 from each loop, and the queue
      // each burst made at the endpoint tripled the median latency measured direct (0.200 ms against
      // 0.062). This costs a loop wake-up per request when the loop has nothing else to do: about
      // 45% more of the generator's CPU at that rate (docs/BENCHMARKS.md, "Latency at 50% of
      // nginx's rate (b)").
      loop.schedule(ticker, Math.max(0, nextDueNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
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
      pool.lease(endpoint, CONNECT_TIMEOUT_MS).onComplete(ar -> {
        if (ar.failed()) {
          Throwable t = ar.cause();
          failed(into, UpstreamClient.isTimeout(t) ? "timeout" : "connect", then, true);
          return;
        }
        new Exchange(ar.result(), start, into, then).send();
      });
    }

    /** One request on a leased connection, timed as the client sees it. */
    private final class Exchange implements UpstreamConnection.Listener {
      private final UpstreamClient.Lease lease;
      private final long start;
      private final Recorder into;
      private final Runnable then;
      private Timeouts.Quiet idle;
      private ResponseTimer timer;
      private int status;
      /** Where a successful response's timings go: {@code into}, or nowhere for an error status. */
      private Recorder timings;
      private boolean ended;

      Exchange(UpstreamClient.Lease lease, long start, Recorder into, Runnable then) {
        this.lease = lease;
        this.start = start;
        this.into = into;
        this.then = then;
      }

      void send() {
        idle = timeouts.quiet(context, TimeUnit.MILLISECONDS.toNanos(IDLE_TIMEOUT_MS), () -> {
          if (finish(false)) {
            failed(into, "timeout", then, false);
          }
        });
        ByteBuf bytes = ((BufferInternal) body).getByteBuf(); // never released: sent again and again
        lease.connection().send(head, bytes, this);
      }

      @Override
      public void onHead(HttpResponse r) {
        status = r.status().code();
        timings = status / 100 == 2 ? into : null;
        timer = new ResponseTimer(start, r.headers().get(HttpHeaderNames.CONTENT_TYPE));
      }

      @Override
      public void onContent(Buffer chunk) {
        long now = System.nanoTime();
        idle.touch(now);
        timer.chunk(chunk, now, timings);
      }

      @Override
      public void onEnd(boolean reusable) {
        if (!finish(reusable)) {
          return;
        }
        if (status / 100 != 2) {
          failed(into, "http_" + status, then, false);
          return;
        }
        timer.end(System.nanoTime(), into);
        inflight.decrementAndGet();
        completed.increment();
        then.run();
      }

      @Override
      public void onError(Throwable cause) {
        if (finish(false)) {
          failed(into, "reset", then, false);
        }
      }

      /**
       * Ends the exchange and gives its connection back (closed unless {@code reusable}); false if
       * it had ended already.
       */
      private boolean finish(boolean reusable) {
        if (ended) {
          return false;
        }
        ended = true;
        idle.cancel();
        lease.release(reusable);
        return true;
      }
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
