package io.llmproxy.server;

import static java.util.Objects.requireNonNull;

import io.github.bucket4j.TimeMeter;
import io.llmproxy.admin.AdminApi;
import io.llmproxy.api.PerEventLoop;
import io.llmproxy.api.VertxSetup;
import io.llmproxy.auth.AccessControl;
import io.llmproxy.auth.ClientAddress;
import io.llmproxy.auth.KeyRegistry;
import io.llmproxy.config.BackendConfig;
import io.llmproxy.config.ConfigException;
import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.ConfigReload;
import io.llmproxy.limits.Quotas;
import io.llmproxy.limits.RateLimits;
import io.llmproxy.store.EmbeddedStore;
import io.llmproxy.store.Store;
import io.llmproxy.usage.UsageRecorder;
import io.llmproxy.usage.WebhookDelivery;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.config.IoTransport;
import io.llmproxy.config.OutlierDetectionConfig;
import io.llmproxy.config.RateLimitConfig;
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
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.transport.Transport;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running gateway: its own Vert.x with one event loop per core, one server and upstream pool per
 * event loop, the active health checks, and the metrics. Start with {@link #start}; stop with
 * {@link #shutdown}; {@link #reload} reads its config file again (SIGHUP, {@code POST /admin/reload}).
 */
public final class Gateway {
  private static final Logger LOG = LoggerFactory.getLogger(Gateway.class);


  private final Vertx vertx;
  /** The transport the event loops use: epoll, io_uring or nio. */
  private String transportName;
  /**
   * The config it started with. What a reload may change is read from {@link #live}'s; this one
   * only for what is fixed until a restart (listen, transport, store, pools, logs).
   */
  private final GatewayConfig config;
  private final GatewayMetrics metrics;
  /** The router of the config now in force; a reload replaces it. */
  private final AtomicReference<Router> live = new AtomicReference<>();
  /** The file {@link #reload} reads; null for a config built in code. */
  private volatile Path configFile;
  /** Sets {@code logging.level} on a reload; set by the command line, which owns the log output. */
  private volatile Consumer<String> logLevelSetter = level -> { };
  /** Replaced by a reload that changes the backends or the checks; guarded by this. */
  private ActiveHealthChecker health;
  private final ModelCatalog models;
  private final Readiness readiness;
  private final AccessLog accessLog;
  private final Timeouts timeouts = new Timeouts();
  private final LatencyStats stats;
  private final HedgeBudget budget;
  private final HttpClientAgent probeClient;
  private final Clock clock;
  private final TimeMeter timeMeter;
  /** The embedded store; null when nothing needs one (no auth and no usage hook). */
  private final Store store;
  private final AccessControl access;
  /** Usage events to the store (and the spool); null without a store. */
  private final UsageRecorder usage;
  /** The usage webhook; null when off. */
  private WebhookDelivery webhook;
  /** The servers, one per event loop; null until they all listen. */
  private volatile PerEventLoop<GatewayVerticle> servers;
  private int port;
  private final AtomicReference<Future<Void>> stopping = new AtomicReference<>();

  private Gateway(Vertx vertx, GatewayConfig config, Clock clock, TimeMeter timeMeter) {
    this.vertx = vertx;
    this.config = config;
    this.clock = clock;
    this.timeMeter = timeMeter;
    this.metrics = new GatewayMetrics();
    this.stats = new LatencyStats(System::nanoTime, this::thresholdGauge);
    this.budget = new HedgeBudget(config.routing().hedge().budgetPercent(), System::nanoTime);
    Router router = new Router(config, backends(config, null), metrics, stats);
    live.set(router);
    backendGauges(null, router);
    modelLabels(router);
    this.probeClient = vertx.createHttpClient(
        new HttpClientOptions().setKeepAlive(true).setTcpNoDelay(true).setName("llmproxy-probes"),
        new PoolOptions().setHttp1MaxSize(2));
    this.health = new ActiveHealthChecker(vertx, probeClient, config.healthCheck(), router.backends());
    this.models = new ModelCatalog(vertx, probeClient, live::get, Duration.ofSeconds(60), config.healthCheck().timeout());
    this.readiness = new Readiness(() -> live.get().backends());
    this.accessLog = new AccessLog(config.logging().accessLog(),
        config.logging().format() == GatewayConfig.LogFormat.JSON, System.out);
    metrics.accessLogDropped(accessLog::dropped);
    for (String warning : config.warnings()) {
      LOG.warn(warning);
    }
    this.store = config.auth().enabled() || config.usageHook().enabled() ? EmbeddedStore.open(config.dataDir()) : null;
    try {
      this.access = accessControl();
    } catch (RuntimeException e) {
      if (store != null) {
        store.close();
      }
      throw e;
    }
    this.usage = store == null ? null : new UsageRecorder(store, config.usageHook().enabled(), metrics.registry());
    if (access.quotas() != null) {
      // Quotas need keys, so a store, so a recorder: every request counted records a usage event
      // just after, and the counts go to disk in that event's commit (within the recorder's second at
      // most), so an acknowledged event's tokens are in its key's count even after a kill -9.
      usage.beforeEachCommit(access.quotas()::stage);
    }
    BodyScanner.warmUp();
  }

  private AccessControl accessControl() {
    KeyRegistry keys = null;
    Quotas quotas = null;
    if (config.auth().enabled()) {
      keys = new KeyRegistry(store, config.auth(), config.rateLimit().perKey(), config.apiKeys(), clock);
      quotas = new Quotas(store, clock);
    }
    RateLimits limits = null;
    if (config.rateLimit().enabled()) {
      limits = new RateLimits(config.rateLimit(), timeMeter);
    }
    return new AccessControl(keys, limits, quotas, new ClientAddress(config.auth().trustedProxies()), clock, metrics);
  }

  /**
   * The backends of {@code c}. One whose namesake in {@code old} has the same URL is the same
   * backend: it keeps its requests in flight and its health check's verdict (unknown again when the
   * checks were off until now), and its passive health too while {@code outlier_detection} is
   * unchanged. The others start as at a start.
   */
  private List<Backend> backends(GatewayConfig c, Router old) {
    boolean checksTurnedOn = old != null && !old.config().healthCheck().enabled() && c.healthCheck().enabled();
    List<Backend> backends = new ArrayList<>();
    for (int i = 0; i < c.backends().size(); i++) {
      BackendConfig bc = c.backends().get(i);
      Backend prev = old == null ? null : old.backend(bc.name());
      boolean same = prev != null && prev.config().url().equals(bc.url());
      Backend.State state = same ? prev.state() : new Backend.State();
      if (same && checksTurnedOn) {
        state.checksRestarted();
      }
      PassiveHealth passive;
      if (same && prev.passive() != null && c.outlierDetection().enabled()) {
        passive = prev.passive(); // an ejected backend stays out across a reload
        passive.reconfigure(c.outlierDetection());
      } else {
        passive = passiveHealth(bc.name(), c.outlierDetection());
      }
      backends.add(new Backend(bc, i, state, c.healthCheck().enabled(), passive));
    }
    return backends;
  }

  /**
   * The per-backend gauges of {@code now}'s backends, which read the backend of that name in the
   * config in force at scrape time; those of backends gone since {@code old} are removed.
   */
  private void backendGauges(Router old, Router now) {
    for (Backend b : now.backends()) {
      String name = b.name();
      Backend prev = old == null ? null : old.backend(name);
      if (prev != null && Objects.equals(prev.config().region(), b.config().region())) {
        continue; // registered already, and they read whichever backend has the name now
      }
      if (prev != null) {
        metrics.removeBackendGauges(name); // its region label changed
      }
      metrics.backendGauges(name, b.config().region(),
          () -> named(name).map(x -> x.routable() ? 1 : 0).orElse(0),
          () -> named(name).map(Backend::inflight).orElse(0));
      metrics.backendStates(name, state -> named(name).map(x -> stateOf(x) == state ? 1 : 0).orElse(0));
    }
    if (old != null) {
      for (Backend b : old.backends()) {
        if (now.backend(b.name()) == null) {
          metrics.removeBackendGauges(b.name());
        }
      }
    }
  }

  /**
   * The models the config names get labels of their own; with hedging on, their hedge and race
   * counters too, at 0 (a reload adds the new names).
   */
  private void modelLabels(Router router) {
    router.configuredModelNames().forEach(metrics::modelServed);
    RoutingConfig.HedgeConfig hedge = router.config().routing().hedge();
    if (hedge.enabled()) {
      metrics.hedgeModels(router.configuredModelNames(), hedge.coldStartRace());
    }
  }

  /** The backend of that name in the config in force now. */
  private Optional<Backend> named(String name) {
    return Optional.ofNullable(live.get().backend(name));
  }

  /** A backend's passive health, logging each change of state once and counting cooldowns; null when off. */
  private PassiveHealth passiveHealth(String backend, OutlierDetectionConfig od) {
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
    Router router = live.get();
    if (!router.config().routing().hedge().enabled() || router.backend(backend) == null) {
      return; // not hedging; or a sample of a backend a reload has just removed
    }
    metrics.hedgeThreshold(backend, model, kind == LatencyStats.Kind.TTFT, () -> {
      RoutingConfig.HedgeConfig h = live.get().config().routing().hedge(); // as reloaded
      return h.enabled() ? h.thresholdNanos(p -> entry.window().percentileNanos(p, System.nanoTime())) / 1e6 : Double.NaN;
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
    return start(config, Clock.systemUTC(), TimeMeter.SYSTEM_NANOTIME);
  }

  /**
   * Starts a gateway whose quota periods and key expiry follow {@code clock} and whose rate limits
   * follow {@code timeMeter} (tests move them by hand).
   */
  public static Future<Gateway> start(GatewayConfig config, Clock clock, TimeMeter timeMeter) {
    Transport transport;
    try {
      transport = transport(requireNonNull(config, "config").transport());
    } catch (IllegalStateException e) {
      return Future.failedFuture(e);
    }
    return start(config, clock, timeMeter, transport);
  }

  /**
   * Starts a gateway on {@code transport} instead of the one {@code config.transport} names (tests
   * give it one whose sockets fail).
   */
  public static Future<Gateway> start(GatewayConfig config, Clock clock, TimeMeter timeMeter, Transport transport) {
    int loops = Runtime.getRuntime().availableProcessors();
    Vertx vertx = Vertx.builder().with(VertxSetup.options(loops)).withTransport(transport).build();
    Gateway gateway;
    try {
      gateway = new Gateway(vertx, config, clock, timeMeter);
      gateway.transportName = transport.name();
    } catch (RuntimeException e) {
      vertx.close();
      return Future.failedFuture(e);
    }
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

  /**
   * Completion-queue entries of each io_uring ring. With Netty's 4,096, a burst of more connections
   * than that (10,000 at once in the benchmark's (d)) overflows the acceptor's queue: the kernel keeps
   * the overflow and nothing is lost, but Netty logs a warning each time. Four times as many cost
   * 192 KiB more per ring. A {@code -Dio.netty.iouring.cqSize} given to the JVM wins.
   */
  static final String URING_CQ_SIZE = "16384";

  /**
   * The transport {@code transport} names: one that cannot be loaded here is an error, except with
   * {@code auto}, which takes io_uring, else the platform's other native one (epoll, kqueue), else NIO.
   *
   * <p>io_uring is Vert.x's, as it is. A ring of provided receive buffers with multishot receives
   * (tried in 361ad1b, about 3% less CPU per request) loses a read in Netty 4.2.18 to 4.2.21: a
   * pause and a resume that both land while the multishot's cancel is in flight leave nothing armed,
   * and a stream whose client is slow then stalls until the idle timeout cuts it ({@code
   * BackpressureTest} failed 4 runs in 12 under CPU load with the ring, none without).
   */
  static Transport transport(IoTransport wanted) {
    // Before Netty's io_uring classes load: see URING_CQ_SIZE.
    System.getProperties().putIfAbsent("io.netty.iouring.cqSize", URING_CQ_SIZE);
    Transport t = switch (wanted) {
      case AUTO -> {
        Transport uring = Transport.IO_URING;
        if (uring != null && uring.available()) {
          yield uring;
        }
        Transport nat = Transport.nativeTransport();
        Transport fallback = nat != null && nat.available() ? nat : Transport.NIO;
        Throwable cause = uring == null ? null : uring.unavailabilityCause();
        LOG.info("transport auto: io_uring is not available here{}; using {}",
            cause == null ? "" : " (" + cause + ")", fallback.name());
        yield fallback;
      }
      case EPOLL -> Transport.EPOLL;
      case IO_URING -> Transport.IO_URING;
      case NIO -> Transport.NIO;
    };
    if (t == null || !t.available()) {
      Throwable cause = t == null ? null : t.unavailabilityCause();
      throw new IllegalStateException("transport: " + GatewayMetrics.label(wanted) + " is not available here"
          + (cause == null ? "" : ": " + cause.getMessage()) + " (transport: auto takes io_uring, else epoll, else NIO)");
    }
    return t;
  }

  private Future<Gateway> deploy(int loops) {
    GatewayServices services = new GatewayServices(live, metrics, accessLog, models, readiness,
        new ProxyServices(timeouts, metrics, stats, budget), access, usageLedger(), config.admin().enabled()
            ? AdminApi.create(vertx, config, access, store, live::get, stats, Gateway::stateOf, this::reload, clock)
            : null);
    // Port 0 asks for a free port; a negative port makes Vert.x share one random port among the loops.
    int listenPort = config.listen().port() == 0 ? -1 : config.listen().port();
    return PerEventLoop.deploy(vertx, loops, () -> new GatewayVerticle(services, loops, listenPort, config.drainTimeout()))
        .map(deployed -> {
          port = deployed.deployed().get(0).actualPort();
          if (config.usageHook().enabled()) {
            // delivers what a previous run left in the spool, then each batch the recorder commits
            webhook = new WebhookDelivery(vertx, store, config.usageHook(), metrics.registry());
            usage.onAcknowledged(n -> webhook.wake());
          }
          synchronized (this) { // a reload that came first replaced the checker, and left starting it to here
            servers = deployed;
            health.start();
          }
          models.start();
          GatewayConfig now = config(); // a reload during the start may have replaced the backends
          LOG.info("llmproxy listening on {}:{} with {} backends, strategy {}, {} event loops ({})",
              config.listen().host(), port, now.backends().size(),
              now.strategy().name().toLowerCase(java.util.Locale.ROOT), loops,
              transportName);
          return this;
        });
  }

  /** The transport its event loops use: {@code epoll}, {@code io_uring} or {@code nio}. */
  public String transport() {
    return transportName;
  }

  /** The port the gateway listens on (the real one when the config asked for port 0). */
  public int port() {
    return port;
  }

  public GatewayMetrics metrics() {
    return metrics;
  }

  /** The router of the config now in force. */
  public Router router() {
    return live.get();
  }

  /** The config now in force: the one it started with, or the last one reloaded (as {@link ConfigReload#effective}). */
  public GatewayConfig config() {
    return live.get().config();
  }

  /**
   * The file {@link #reload} reads: the one the gateway was started from. A gateway given no file
   * (a config built in code, as the demo's) has nothing to reload.
   */
  public void configFile(Path file) {
    this.configFile = requireNonNull(file, "file");
  }

  /** What applies a reloaded {@code logging.level}; the embedding application's own logging when not set. */
  public void logLevelSetter(Consumer<String> setter) {
    this.logLevelSetter = requireNonNull(setter, "setter");
  }

  /**
   * Reads the config file again and applies it ({@link #reload(GatewayConfig)}); blocking, so not on
   * an event loop. A file with problems changes nothing: they are logged, counted
   * ({@code llmproxy_config_reloads_total{result="failure"}}) and thrown.
   *
   * @throws ConfigException the file's problems, each naming its path
   * @throws IllegalStateException no config file, or the gateway is stopping
   */
  public synchronized ConfigReload reload() throws ConfigException {
    Path file = configFile;
    if (file == null) {
      throw new IllegalStateException("This gateway was not started from a config file: there is nothing to reload.");
    }
    GatewayConfig next;
    try {
      next = ConfigLoader.load(file);
    } catch (ConfigException e) {
      metrics.configReload(false);
      LOG.error("config reload: {} has {} problem(s); still running on the config loaded before", file,
          e.problems().size());
      e.problems().forEach(p -> LOG.error("config reload: {}: {}", file, p));
      throw e;
    }
    return reload(next);
  }

  /**
   * Applies a new config to the running gateway (see {@link ConfigReload} for what it can change):
   * requests that start afterwards route by it, those in flight finish on the config they started
   * with. A backend keeps its state across the reload while its name and URL stay; the pools of
   * backends that left close their idle connections, and the health checks start over when the
   * backends or {@code health_check} changed. A change that needs a restart is logged as a WARN.
   *
   * @throws IllegalStateException the gateway is stopping
   */
  public synchronized ConfigReload reload(GatewayConfig next) {
    if (stopping.get() != null) {
      throw new IllegalStateException("The gateway is stopping: nothing was reloaded.");
    }
    Router old = live.get();
    ConfigReload r = ConfigReload.of(old.config(), next);
    try {
      if (!r.applied().isEmpty()) {
        apply(old, r.effective());
      }
    } catch (RuntimeException e) {
      metrics.configReload(false);
      LOG.error("config reload: applying the new config failed", e);
      throw e;
    }
    metrics.configReload(true);
    Path file = configFile;
    String from = file == null ? "" : " from " + file;
    LOG.info("config reloaded{}: {}", from, r.applied().isEmpty() ? "nothing to apply" : String.join("; ", r.applied()));
    r.effective().warnings().forEach(w -> LOG.warn("config reload: {}", w));
    if (!r.needRestart().isEmpty()) {
      LOG.warn("config reload: {} changed, but take effect only after a restart; the gateway keeps running on the "
          + "values it started with", String.join(", ", r.needRestart()));
    }
    return r;
  }

  /** Switches from {@code old}'s config to {@code c}, whose settings a reload may change. */
  private void apply(Router old, GatewayConfig c) {
    GatewayConfig was = old.config();
    if (access.keys() != null && !was.apiKeys().equals(c.apiKeys())) {
      // first: the one step that writes (the store); a key gone takes its counters along
      access.keys().reload(c.apiKeys()).forEach(access::forget);
    }
    RateLimitConfig rates = c.rateLimit();
    if (access.keys() != null && !Objects.equals(was.rateLimit().perKey(), rates.perKey())) {
      access.keys().perKeyLimits(rates.perKey()); // every key held, those the file just added included
    }
    if (access.limits() != null && !Objects.equals(was.rateLimit().global(), rates.global())) {
      access.limits().global(rates.global());
    }
    if (!was.logging().level().equals(c.logging().level())) {
      logLevelSetter.accept(c.logging().level());
    }
    Router router = new Router(c, backends(c, old), metrics, stats);
    budget.percent(c.routing().hedge().budgetPercent());
    boolean newChecks = !was.healthCheck().equals(c.healthCheck()) || !was.backends().equals(c.backends());
    if (newChecks) {
      health.stop(); // before the switch: no probe of the old checks lands on the new backends
      health = new ActiveHealthChecker(vertx, probeClient, c.healthCheck(), router.backends());
    }
    live.set(router);
    for (Backend b : old.backends()) {
      if (router.backends().stream().noneMatch(n -> n.state() == b.state())) {
        b.state().retire(); // removed, or its URL changed: nothing new goes to it
        stats.forget(b.name()); // its latencies are the old URL's
        metrics.removeHedgeThresholds(b.name());
      }
    }
    backendGauges(old, router);
    modelLabels(router);
    if (c.routing().hedge().enabled() && !was.routing().hedge().enabled()) {
      stats.forEach(this::thresholdGauge); // the pairs seen while hedging was off
    }
    PerEventLoop<GatewayVerticle> s = servers;
    if (s != null) { // started: else deploy starts the checks
      if (newChecks) {
        health.start();
      }
      s.deployed().forEach(GatewayVerticle::dropRetiredBackends);
    }
    models.reloaded();
  }

  public AccessControl access() {
    return access;
  }

  /** The embedded store (keys, quota counters, usage totals); null when nothing needs one. */
  public Store store() {
    return store;
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
    PerEventLoop<GatewayVerticle> s = servers;
    Future<Void> undeploy = Future.succeededFuture();
    if (s != null) { // null after a start that failed: nothing was served, nothing to say
      LOG.info("llmproxy stopping: draining in-flight requests for up to {} ms", drain.toMillis());
      s.deployed().forEach(v -> v.drainTimeout(drain));
      undeploy = s.undeploy();
    }
    // vertx.close() stops the event loops, so what follows it must not run on one of them: the
    // returned future is completed from the thread that finishes the close, on no context.
    Promise<Void> done = Promise.promise();
    undeploy
        .eventually(probeClient::close)
        .eventually(() -> flushUsage(drain))
        .onComplete(ar -> vertx.close().onComplete(closed -> {
          closeStore();
          accessLog.close();
          metrics.close();
          done.complete();
        }));
    f = done.future();
    return stopping.compareAndSet(null, f) ? f : stopping.get();
  }

  /** Each request's usage event: to the recorder (store totals, the webhook's spool); null without a store. */
  private UsageLedger usageLedger() {
    return usage == null ? null : usage::record;
  }

  /**
   * After the last request: the recorder writes what it holds (the quota counts with it), then the
   * webhook gets up to the drain time (at least a second) to deliver the spool (SPEC §9); what it
   * cannot stays spooled for the next start. The counts are on disk before that wait, so a hook that
   * gives up on it, or a SIGKILL at the end of a grace period, loses none.
   */
  private Future<Void> flushUsage(Duration drain) {
    if (usage == null) {
      return Future.succeededFuture();
    }
    return vertx.executeBlocking(() -> {
      usage.close();
      return null;
    }, false).compose(v -> webhook == null ? Future.<Void>succeededFuture()
        : webhook.drain(drain.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : drain)
            .eventually(() -> {
              webhook.close();
              return Future.succeededFuture();
            })).mapEmpty();
  }

  /** The last quota counts and usage go to the store, which closes. */
  private void closeStore() {
    try {
      if (access.quotas() != null) {
        access.quotas().flush();
      }
    } catch (RuntimeException e) {
      LOG.error("could not write the quota counters at shutdown", e);
    } finally {
      if (store != null) {
        store.close();
      }
    }
  }

  /** Stops at once, with no drain. */
  public Future<Void> close() {
    return shutdown(Duration.ZERO);
  }
}
