package io.llmproxy.server;

import static java.util.Objects.requireNonNull;

import io.llmproxy.config.BackendConfig;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.config.OutlierDetectionConfig;
import io.llmproxy.config.RoutingConfig;
import io.llmproxy.config.ValueParsers;
import io.llmproxy.health.ActiveHealthChecker;
import io.llmproxy.health.PassiveHealth;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.metrics.GatewayMetrics.BackendState;
import io.llmproxy.proxy.BodyScanner;
import io.llmproxy.proxy.ProxyServices;
import io.llmproxy.proxy.Timeouts;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.HedgeBudget;
import io.llmproxy.routing.Router;
import io.llmproxy.stats.LatencyStats;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.PoolOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running gateway: its own Vert.x with one event loop per core, one server and upstream pool per
 * event loop, the active health checks, and the metrics. Start with {@link #start}; stop with
 * {@link #shutdown}.
 */
public final class Gateway {
  private static final Logger LOG = LoggerFactory.getLogger(Gateway.class);

  /** Sections of the config whose features come in later releases: accepted, and said to do nothing yet. */
  private static final List<String> NOT_YET_EFFECTIVE = List.of(
      "rate_limit", "auth", "api_keys", "usage_hook", "admin", "data_dir");

  private final Vertx vertx;
  private final GatewayConfig config;
  private final GatewayMetrics metrics;
  private final Router router;
  private final ActiveHealthChecker health;
  private final ModelCatalog models;
  private final Readiness readiness;
  private final AccessLog accessLog;
  private final Timeouts timeouts = new Timeouts();
  private final LatencyStats stats;
  private final HedgeBudget budget;
  private final HttpClientAgent probeClient;
  private final List<GatewayVerticle> verticles = new ArrayList<>();
  private String deploymentId;
  private int port;
  private final AtomicReference<Future<Void>> stopping = new AtomicReference<>();

  private Gateway(Vertx vertx, GatewayConfig config) {
    this.vertx = vertx;
    this.config = config;
    this.metrics = new GatewayMetrics();
    List<Backend> backends = new ArrayList<>();
    for (int i = 0; i < config.backends().size(); i++) {
      BackendConfig bc = config.backends().get(i);
      Backend b = new Backend(bc, i, config.healthCheck().enabled(), passiveHealth(bc.name()));
      backends.add(b);
      metrics.backendGauges(b.name(), b.config().region(), b, x -> x.routable() ? 1 : 0, Backend::inflight);
      metrics.backendStates(b.name(), state -> stateOf(b) == state ? 1 : 0);
    }
    this.stats = new LatencyStats(System::nanoTime, this::thresholdGauge);
    this.budget = new HedgeBudget(config.routing().hedge().budgetPercent(), System::nanoTime);
    this.router = new Router(config, backends, metrics, stats);
    this.probeClient = vertx.createHttpClient(
        new HttpClientOptions().setKeepAlive(true).setTcpNoDelay(true).setName("llmproxy-probes"),
        new PoolOptions().setHttp1MaxSize(2));
    this.health = new ActiveHealthChecker(vertx, probeClient, config.healthCheck(), backends);
    this.models = new ModelCatalog(vertx, probeClient, router, Duration.ofSeconds(60), config.healthCheck().timeout());
    this.readiness = new Readiness(backends);
    this.accessLog = new AccessLog(config.logging().accessLog(),
        config.logging().format() == GatewayConfig.LogFormat.JSON, System.out);
    metrics.accessLogDropped(accessLog::dropped);
    BodyScanner.warmUp();
  }

  /** A backend's passive health, logging each change of state once and counting cooldowns; null when off. */
  private PassiveHealth passiveHealth(String backend) {
    OutlierDetectionConfig od = config.outlierDetection();
    if (!od.enabled()) {
      return null;
    }
    return new PassiveHealth(od, System::nanoTime, () -> ThreadLocalRandom.current().nextDouble(),
        (from, to, why, cooldownNanos) -> {
          if (to == PassiveHealth.State.EJECTED) {
            metrics.cooldown(backend);
            LOG.warn("backend {} ejected for {} ({}; was {})", backend,
                ValueParsers.format(Duration.ofMillis(TimeUnit.NANOSECONDS.toMillis(cooldownNanos))), why,
                GatewayMetrics.label(from));
          } else {
            LOG.info("backend {} is {} ({}; was {})", backend, GatewayMetrics.label(to).replace('_', '-'), why,
                GatewayMetrics.label(from));
          }
        });
  }

  /**
   * {@code llmproxy_hedge_threshold_ms} for a new statistics entry: the percentile of its window the
   * hedge uses, clamped as the hedge clamps it (the fixed threshold, when one is set).
   */
  private void thresholdGauge(String backend, String model, LatencyStats.Kind kind, LatencyStats.Entry entry) {
    RoutingConfig.HedgeConfig h = config.routing().hedge();
    if (!h.enabled()) {
      return;
    }
    long min = h.minThreshold().toNanos();
    long max = h.maxThreshold().toNanos();
    metrics.hedgeThreshold(backend, model, kind == LatencyStats.Kind.TTFT, () -> {
      long t = h.threshold().fixed() != null ? h.threshold().fixed().toNanos()
          : entry.window().percentileNanos(h.threshold().percentile(), System.nanoTime());
      return Math.max(min, Math.min(max, t < 0 ? max : t)) / 1e6;
    });
  }

  /** The state {@code llmproxy_backend_state} shows: down by its health check, else its passive state. */
  private static BackendState stateOf(Backend b) {
    if (b.health() == Backend.Health.DOWN) {
      return BackendState.DOWN;
    }
    PassiveHealth p = b.passive();
    if (p == null) {
      return BackendState.HEALTHY;
    }
    return switch (p.state()) {
      case HEALTHY -> BackendState.HEALTHY;
      case EJECTED -> BackendState.EJECTED;
      case HALF_OPEN -> BackendState.HALF_OPEN;
      case SLOW_START -> BackendState.SLOW_START;
    };
  }

  /** Starts a gateway on a Vert.x of its own, with one event loop per available core. */
  public static Future<Gateway> start(GatewayConfig config) {
    int loops = Runtime.getRuntime().availableProcessors();
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(loops).setPreferNativeTransport(true));
    Gateway gateway = new Gateway(vertx, requireNonNull(config, "config"));
    // Completed on no context: after a failed start the gateway's own Vert.x is closed.
    Promise<Gateway> started = Promise.promise();
    gateway.deploy(loops).onComplete(ar -> {
      if (ar.succeeded()) {
        started.complete(gateway);
      } else {
        gateway.close().onComplete(closed -> started.fail(ar.cause()));
      }
    });
    return started.future();
  }

  private Future<Gateway> deploy(int loops) {
    for (String section : NOT_YET_EFFECTIVE) {
      if (config.explicitSections().contains(section)) {
        LOG.warn("{} has no effect yet", section);
      }
    }
    GatewayServices services = new GatewayServices(config, router, metrics, accessLog, models, readiness,
        new ProxyServices(timeouts, metrics, stats, budget));
    // Port 0 asks for a free port; a negative port makes Vert.x share one random port among the loops.
    int listenPort = config.listen().port() == 0 ? -1 : config.listen().port();
    return vertx.deployVerticle(() -> {
          GatewayVerticle v = new GatewayVerticle(services, loops, listenPort, config.drainTimeout());
          synchronized (verticles) {
            verticles.add(v);
          }
          return v;
        }, new DeploymentOptions().setInstances(loops))
        .map(id -> {
          deploymentId = id;
          port = verticles.get(0).actualPort();
          health.start();
          models.start();
          LOG.info("llmproxy listening on {}:{} with {} backends, strategy {}, {} event loops ({})",
              config.listen().host(), port, config.backends().size(),
              config.strategy().name().toLowerCase(java.util.Locale.ROOT), loops,
              vertx.isNativeTransportEnabled() ? "epoll" : "nio");
          return this;
        });
  }

  /** The port the gateway listens on (the real one when the config asked for port 0). */
  public int port() {
    return port;
  }

  public GatewayMetrics metrics() {
    return metrics;
  }

  public Router router() {
    return router;
  }

  public GatewayConfig config() {
    return config;
  }

  /**
   * Graceful stop (SPEC §9): {@code /ready} turns 503, the listening socket closes so new connections
   * are refused, in-flight requests may finish for up to {@code drain}, then everything closes.
   * Calling it again returns the same future.
   */
  public synchronized Future<Void> shutdown(Duration drain) {
    Future<Void> f = stopping.get();
    if (f != null) {
      return f;
    }
    readiness.draining();
    health.stop();
    models.stop();
    LOG.info("llmproxy stopping: draining in-flight requests for up to {} ms", drain.toMillis());
    synchronized (verticles) {
      verticles.forEach(v -> v.drainTimeout(drain));
    }
    Future<Void> undeploy = deploymentId == null ? Future.succeededFuture() : vertx.undeploy(deploymentId);
    // vertx.close() stops the event loops, so what follows it must not run on one of them: the
    // returned future is completed from the thread that finishes the close, on no context.
    Promise<Void> done = Promise.promise();
    undeploy
        .eventually(probeClient::close)
        .onComplete(ar -> vertx.close().onComplete(closed -> {
          accessLog.close();
          timeouts.close();
          metrics.close();
          done.complete();
        }));
    f = done.future();
    return stopping.compareAndSet(null, f) ? f : stopping.get();
  }

  /** Stops at once, with no drain. */
  public Future<Void> close() {
    return shutdown(Duration.ZERO);
  }
}
