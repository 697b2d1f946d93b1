package io.llmproxy.metrics;

import static java.util.Objects.requireNonNull;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.netty4.NettyAllocatorMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import java.util.Collection;
import java.util.EnumMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.DoubleSupplier;

/**
 * Every metric llmproxy exports (SPEC §7): names, labels and buckets live here and nowhere else.
 * Each meter's comment says where its clock starts and stops. Label sets stay bounded: backends are
 * from the config, model names go through {@link ModelLabels}, everything else is an enum.
 *
 * <p>Thread-safe; meters are cached so the request path does no registry lookups after warm-up.
 */
public final class GatewayMetrics implements AutoCloseable {

  /** Requests answered, by the status the client got. Counted once per request, at its end. */
  public static final String REQUESTS = "llmproxy.requests";
  /** Total latency as the client sees it: request received to last byte written (or abort). */
  public static final String LATENCY = "llmproxy.latency";
  /** Client TTFT: request received to the first token (first body byte when not streaming) written to the client. */
  public static final String TTFT = "llmproxy.ttft";
  /** Attempt TTFT: upstream request written to the first token received from that backend. */
  public static final String BACKEND_TTFT = "llmproxy.backend.ttft";
  /**
   * What the gateway itself adds: from the request body fully read to the winning attempt's request
   * handed to the upstream connection (parsing, routing), plus from the winner's first byte received
   * to it being written to the client. Upstream connect time, backend time, retries' backoff and
   * failed attempts are not in it.
   */
  public static final String OVERHEAD = "llmproxy.overhead";
  /** Tokens from the {@code usage} the backend reported, counted when the response ends. */
  public static final String TOKENS = "llmproxy.tokens";
  /** Upstream attempts, counted once each when the attempt ends, by how it ended. */
  public static final String UPSTREAM_ATTEMPTS = "llmproxy.upstream.attempts";
  /** Upstream requests the gateway aborted (reset/closed) while the backend was still working. */
  public static final String CANCELLED_UPSTREAM = "llmproxy.cancelled.upstream";
  /** Retries started, by the failure that caused them. */
  public static final String RETRIES = "llmproxy.retries";
  /** Failures that were not retried, by why not (SPEC §6.3: every decision not to retry is counted). */
  public static final String RETRIES_REFUSED = "llmproxy.retries.refused";
  /** Gauge: 1 while a backend is routable by its active health check, else 0. */
  public static final String BACKEND_UP = "llmproxy.backend.up";
  /** Gauge, always 1: a backend's static labels from the config ({@code region}). */
  public static final String BACKEND_INFO = "llmproxy.backend.info";
  /** Gauge: requests in flight to a backend (attempt started to attempt ended). */
  public static final String BACKEND_INFLIGHT = "llmproxy.backend.inflight";
  /**
   * Gauge: 1 for the state a backend is in, 0 for the others: {@code down} by its health check,
   * else its passive state (healthy, ejected, half_open, slow_start). Read at scrape time.
   */
  public static final String BACKEND_STATE = "llmproxy.backend.state";
  /** Cooldowns started (passive ejections), counted when the backend is ejected. */
  public static final String COOLDOWNS = "llmproxy.cooldowns";
  /**
   * Hedges, by outcome: {@code sent} when a hedge attempt starts, {@code won} when a request ends
   * won by an attempt other than its first, {@code budget_exhausted} when a hedge or race entry
   * was due but the budget was spent.
   */
  public static final String HEDGES = "llmproxy.hedges";
  /** Cold-start races: requests sent to more than one candidate at once because some were unknown. */
  public static final String RACES = "llmproxy.races";
  /**
   * Gauge: the hedge threshold now for a backend and model (its recent TTFT percentile, or latency
   * when not streaming, clamped), read at scrape time.
   */
  public static final String HEDGE_THRESHOLD = "llmproxy.hedge.threshold";
  /**
   * Tokens spent by cancelled losers, counted when the request ends: their prompt (the winner's
   * prompt_tokens each, an estimate) and the output events they sent before they were cancelled.
   */
  public static final String WASTED_TOKENS = "llmproxy.wasted.tokens";
  /** Access-log lines dropped because standard output could not keep up. */
  public static final String ACCESS_LOG_DROPPED = "llmproxy.access.log.dropped";
  /** Requests sent to every candidate although none was healthy (SPEC §6.1 panic mode). */
  public static final String PANIC_ROUTED = "llmproxy.panic.routed";
  /** {@code llmproxy_rate_limited_total{scope,kind}}: requests refused by a rate limit. */
  public static final String RATE_LIMITED = "llmproxy.rate.limited";
  /** {@code llmproxy_quota_exceeded_total}: requests refused for an exhausted quota. */
  public static final String QUOTA_EXCEEDED = "llmproxy.quota.exceeded";
  /** {@code llmproxy_usage_events_total{outcome}}: the usage pipeline's events (registered by io.llmproxy.usage). */
  public static final String USAGE_EVENTS = "llmproxy.usage.events";
  /** {@code llmproxy_usage_spool_events}: usage events waiting in the spool for the webhook. */
  public static final String USAGE_SPOOL_EVENTS = "llmproxy.usage.spool.events";
  /** {@code llmproxy_auth_failures_total{reason}}: requests refused by authentication or a key's rules. */
  public static final String AUTH_FAILURES = "llmproxy.auth.failures";
  /** {@code llmproxy_config_reloads_total{result}}: config reloads (SIGHUP, {@code POST /admin/reload}), counted when done. */
  public static final String CONFIG_RELOADS = "llmproxy.config.reloads";
  /** Gauge: 1 when the last config reload succeeded (or none was tried), 0 when the file had problems. */
  public static final String CONFIG_LAST_RELOAD_SUCCESSFUL = "llmproxy.config.last.reload.successful";

  // Bucket bounds in milliseconds.
  private static final double[] LATENCY_BUCKETS_MS = {
      5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 900_000};
  private static final double[] TTFT_BUCKETS_MS = {
      5, 10, 20, 50, 100, 200, 300, 500, 750, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000};
  private static final double[] OVERHEAD_BUCKETS_MS = {
      0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100};

  /** How a hedge went. */
  public enum HedgeOutcome { SENT, WON, BUDGET_EXHAUSTED }

  /** What {@code llmproxy_backend_state} reports. */
  public enum BackendState { HEALTHY, EJECTED, HALF_OPEN, SLOW_START, DOWN }

  /** How an upstream attempt ended. */
  public enum AttemptOutcome { WON, LOST, FAILED, CANCELLED }

  /** Why the gateway aborted an upstream request. */
  public enum CancelReason { CLIENT_DISCONNECT, HEDGE_LOSER, TIMEOUT, SHUTDOWN }

  /** A failure that is retried (SPEC §6.3). */
  public enum RetryReason { CONNECT_ERROR, RESET, STATUS_429, STATUS_5XX, FIRST_TOKEN_TIMEOUT }

  /** The limit that refused a request: {@code llmproxy_rate_limited_total{scope,kind}}. */
  public enum RateLimit {
    GLOBAL_REQUESTS("global", "requests"),
    KEY_REQUESTS("key", "requests"),
    KEY_TOKENS("key", "tokens"),
    KEY_CONCURRENCY("key", "concurrency");

    private final String scope;
    private final String kind;

    RateLimit(String scope, String kind) {
      this.scope = scope;
      this.kind = kind;
    }
  }

  /** Why authentication or a key's rules refused a request: {@code llmproxy_auth_failures_total{reason}}. */
  public enum AuthFailure { MISSING, INVALID, DISABLED, EXPIRED, IP_NOT_ALLOWED, MODEL_NOT_ALLOWED }

  /** Why a failure was not retried. */
  public enum RefusalReason {
    /** Bytes already went to the client. */
    COMMITTED,
    /** {@code routing.retry.enabled: false}. */
    DISABLED,
    /** {@code max_retries} reached. */
    EXHAUSTED,
    /** A 429's retry-after is longer than {@code max_wait}. */
    RETRY_AFTER_TOO_LONG,
    /** The total timeout would pass before the retry could start. */
    DEADLINE,
    /** The client went away. */
    CLIENT_GONE
  }

  private final PrometheusMeterRegistry registry;
  private final ModelLabels models = new ModelLabels(200);
  private final Map<RequestKey, Counter> requests = new ConcurrentHashMap<>();
  private final Map<LatencyKey, DistributionSummary> latency = new ConcurrentHashMap<>();
  private final Map<String, DistributionSummary> ttft = new ConcurrentHashMap<>();
  private final Map<BackendModel, DistributionSummary> backendTtft = new ConcurrentHashMap<>();
  private final Map<BackendModel, Counter[]> tokens = new ConcurrentHashMap<>();
  private final Map<String, Counter[]> attempts = new ConcurrentHashMap<>();
  private final Map<String, Counter> cooldowns = new ConcurrentHashMap<>();
  private final Map<String, Counter[]> hedges = new ConcurrentHashMap<>();
  private final Map<String, Counter> races = new ConcurrentHashMap<>();
  private final Counter wastedPrompt;
  private final Counter wastedCompletion;
  private final DistributionSummary overhead;
  private final Map<CancelReason, Counter> cancelled = new EnumMap<>(CancelReason.class);
  private final Map<RetryReason, Counter> retries = new EnumMap<>(RetryReason.class);
  private final Map<RefusalReason, Counter> refusals = new EnumMap<>(RefusalReason.class);
  private final Counter panicRouted;
  private final Counter quotaExceeded;
  private final Map<RateLimit, Counter> rateLimited = new EnumMap<>(RateLimit.class);
  private final Map<AuthFailure, Counter> authFailures = new EnumMap<>(AuthFailure.class);
  private final Counter reloadsApplied;
  private final Counter reloadsFailed;
  private volatile boolean lastReloadSucceeded = true;
  private final JvmGcMetrics gcMetrics;

  private record RequestKey(String model, String backend, int status, boolean stream) {}

  private record LatencyKey(String model, boolean stream) {}

  private record BackendModel(String backend, String model) {}

  public GatewayMetrics() {
    this.registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    new ClassLoaderMetrics().bindTo(registry);
    new JvmMemoryMetrics().bindTo(registry);
    gcMetrics = new JvmGcMetrics();
    gcMetrics.bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
    new FileDescriptorMetrics().bindTo(registry);
    if (ByteBufAllocator.DEFAULT instanceof ByteBufAllocatorMetricProvider allocator) {
      // netty_allocator_*: the memory Netty's buffers hold (most of it direct, outside the heap)
      new NettyAllocatorMetrics(allocator).bindTo(registry);
    }

    overhead = summary(OVERHEAD, "Time the gateway itself adds to a request", OVERHEAD_BUCKETS_MS, Tags.empty());
    for (CancelReason r : CancelReason.values()) {
      cancelled.put(r, Counter.builder(CANCELLED_UPSTREAM).description("Upstream requests aborted by the gateway")
          .tag("reason", label(r)).register(registry));
    }
    for (RetryReason r : RetryReason.values()) {
      retries.put(r, Counter.builder(RETRIES).description("Retries started, by the failure that caused them")
          .tag("reason", label(r)).register(registry));
    }
    for (RefusalReason r : RefusalReason.values()) {
      refusals.put(r, Counter.builder(RETRIES_REFUSED).description("Failures not retried, by why not")
          .tag("reason", label(r)).register(registry));
    }
    wastedPrompt = Counter.builder(WASTED_TOKENS).description("Tokens spent by cancelled losers (estimated)")
        .tag("type", "prompt").register(registry);
    wastedCompletion = Counter.builder(WASTED_TOKENS).description("Tokens spent by cancelled losers (estimated)")
        .tag("type", "completion").register(registry);
    // At 0 from the start, like every counter whose labels are known: a rate() over them works
    // before the first refusal.
    for (RateLimit l : RateLimit.values()) {
      rateLimited.put(l, Counter.builder(RATE_LIMITED).description("Requests refused by a rate limit")
          .tags("scope", l.scope, "kind", l.kind).register(registry));
    }
    for (AuthFailure f : AuthFailure.values()) {
      authFailures.put(f, Counter.builder(AUTH_FAILURES)
          .description("Requests refused by authentication or a key's rules").tag("reason", label(f)).register(registry));
    }
    panicRouted = Counter.builder(PANIC_ROUTED).description("Requests routed while no candidate was healthy")
        .register(registry);
    quotaExceeded = Counter.builder(QUOTA_EXCEEDED).description("Requests refused because the key's quota is used up")
        .register(registry);
    reloadsApplied = Counter.builder(CONFIG_RELOADS).description("Config reloads, by result")
        .tag("result", "success").register(registry);
    reloadsFailed = Counter.builder(CONFIG_RELOADS).description("Config reloads, by result")
        .tag("result", "failure").register(registry);
    Gauge.builder(CONFIG_LAST_RELOAD_SUCCESSFUL, () -> lastReloadSucceeded ? 1 : 0)
        .description("1 when the last config reload succeeded (or none was tried)").register(registry);
  }

  /** The lower-case label of an enum constant. */
  public static String label(Enum<?> e) {
    return e.name().toLowerCase(java.util.Locale.ROOT);
  }

  /** The bounded label for a client model name. */
  public String modelLabel(String model) {
    return models.label(model);
  }

  /**
   * A backend answered a request for {@code model} with a 2xx, or the config names it: the name may
   * have a label of its own.
   */
  public void modelServed(String model) {
    models.admit(model);
  }

  /**
   * A request ended; {@code backend} is "none" when no backend answered. A model name no backend has
   * served (an unknown model, a rejected request, a name the backend refused) is labelled
   * {@code other} ({@link #modelServed}).
   */
  public void requestCompleted(String model, String backend, int status, boolean stream, long latencyNanos) {
    String m = models.label(model);
    requests.computeIfAbsent(new RequestKey(m, backend, status, stream), k -> Counter.builder(REQUESTS)
            .description("Requests answered")
            .tags("model", k.model(), "backend", k.backend(), "status", Integer.toString(k.status()),
                "stream", Boolean.toString(k.stream()))
            .register(registry))
        .increment();
    latency.computeIfAbsent(new LatencyKey(m, stream), k -> summary(LATENCY,
            "Total latency as the client sees it", LATENCY_BUCKETS_MS,
            Tags.of("model", k.model(), "stream", Boolean.toString(k.stream()))))
        .record(toMillis(latencyNanos));
  }

  public void clientTtft(String model, long nanos) {
    ttft.computeIfAbsent(models.label(model), m -> summary(TTFT,
            "Time to first token as the client sees it", TTFT_BUCKETS_MS, Tags.of("model", m)))
        .record(toMillis(nanos));
  }

  public void backendTtft(String backend, String model, long nanos) {
    backendTtft.computeIfAbsent(new BackendModel(backend, models.label(model)), k -> summary(BACKEND_TTFT,
            "Time to first token of each upstream attempt", TTFT_BUCKETS_MS,
            Tags.of("backend", k.backend(), "model", k.model())))
        .record(toMillis(nanos));
  }

  public void overhead(long nanos) {
    overhead.record(toMillis(nanos));
  }

  public void tokens(String model, String backend, long prompt, long completion) {
    Counter[] c = tokens.computeIfAbsent(new BackendModel(backend, models.label(model)), k -> new Counter[] {
        tokenCounter(k, "prompt"), tokenCounter(k, "completion")});
    if (prompt > 0) {
      c[0].increment(prompt);
    }
    if (completion > 0) {
      c[1].increment(completion);
    }
  }

  private Counter tokenCounter(BackendModel k, String type) {
    return Counter.builder(TOKENS).description("Tokens reported in the backends' usage")
        .tags("model", k.model(), "backend", k.backend(), "type", type).register(registry);
  }

  public void attempt(String backend, AttemptOutcome outcome) {
    attempts.computeIfAbsent(backend, b -> {
      Counter[] c = new Counter[AttemptOutcome.values().length];
      for (AttemptOutcome o : AttemptOutcome.values()) {
        c[o.ordinal()] = Counter.builder(UPSTREAM_ATTEMPTS).description("Upstream attempts, by how they ended")
            .tags("backend", b, "outcome", label(o)).register(registry);
      }
      return c;
    })[outcome.ordinal()].increment();
  }

  public void cancelledUpstream(CancelReason reason) {
    cancelled.get(reason).increment();
  }

  public void retry(RetryReason reason) {
    retries.get(reason).increment();
  }

  public void retryRefused(RefusalReason reason) {
    refusals.get(reason).increment();
  }

  public void panicRouted() {
    panicRouted.increment();
  }

  /** A request refused by a rate limit. */
  public void rateLimited(RateLimit limit) {
    rateLimited.get(limit).increment();
  }

  public void quotaExceeded() {
    quotaExceeded.increment();
  }

  public void authFailure(AuthFailure reason) {
    authFailures.get(reason).increment();
  }

  /** Registers the count of dropped access-log lines, read at scrape time. */
  public void accessLogDropped(java.util.function.LongSupplier dropped) {
    io.micrometer.core.instrument.FunctionCounter.builder(ACCESS_LOG_DROPPED, dropped, d -> d.getAsLong())
        .description("Access-log lines dropped because the output could not keep up").register(registry);
  }

  /** Registers the per-backend gauges; the functions are read at scrape time. */
  public void backendGauges(String backend, String region, DoubleSupplier up, DoubleSupplier inflight) {
    Gauge.builder(BACKEND_INFO, () -> 1).description("A backend's labels from the config")
        .tags("backend", backend, "region", region == null ? "" : region).register(registry);
    Gauge.builder(BACKEND_UP, up::getAsDouble).description("1 when the backend is up by its health checks")
        .tag("backend", backend).register(registry);
    Gauge.builder(BACKEND_INFLIGHT, inflight::getAsDouble).description("Requests in flight to the backend")
        .tag("backend", backend).register(registry);
  }

  /**
   * A config reload removed a backend, or changed its labels: its gauges ({@code _up}, {@code
   * _inflight}, {@code _state}, {@code _info}) go; its counters stay, as counters do.
   */
  public void removeBackendGauges(String backend) {
    removeMeters(Set.of(BACKEND_INFO, BACKEND_UP, BACKEND_INFLIGHT, BACKEND_STATE), backend);
  }

  /** A config reload removed a backend or changed its URL: its hedge thresholds go with its latency statistics. */
  public void removeHedgeThresholds(String backend) {
    removeMeters(Set.of(HEDGE_THRESHOLD), backend);
  }

  private void removeMeters(Set<String> names, String backend) {
    for (Meter m : registry.getMeters()) {
      if (names.contains(m.getId().getName()) && backend.equals(m.getId().getTag("backend"))) {
        registry.remove(m);
      }
    }
  }

  /** A config reload ended: applied, or refused for the file's problems. */
  public void configReload(boolean succeeded) {
    (succeeded ? reloadsApplied : reloadsFailed).increment();
    lastReloadSucceeded = succeeded;
  }

  /** Registers one {@code llmproxy_backend_state} gauge per state; {@code is} says 1 or 0 at scrape time. */
  public void backendStates(String backend, java.util.function.ToIntFunction<BackendState> is) {
    for (BackendState state : BackendState.values()) {
      Gauge.builder(BACKEND_STATE, () -> is.applyAsInt(state)).description("1 for the state the backend is in")
          .tags("backend", backend, "state", label(state)).register(registry);
    }
    cooldownCounter(backend); // exported at 0 from the start
  }

  /** A backend was ejected into a cooldown. */
  public void cooldown(String backend) {
    cooldownCounter(backend).increment();
  }

  private Counter cooldownCounter(String backend) {
    return cooldowns.computeIfAbsent(backend, b -> Counter.builder(COOLDOWNS)
        .description("Cooldowns started (ejections)").tag("backend", b).register(registry));
  }

  public void hedge(String model, HedgeOutcome outcome) {
    hedgeCounters(models.label(model))[outcome.ordinal()].increment();
  }

  public void race(String model) {
    raceCounter(models.label(model)).increment();
  }

  /**
   * The hedge counters (and with {@code races}, the race counter) of each model a config names
   * (mapping keys and literal {@code models}), at 0 from the start, so that a {@code rate()} or
   * {@code increase()} over them counts their first event too. A name the config matches only by
   * a glob gets its counters at its first event.
   */
  public void hedgeModels(Collection<String> names, boolean races) {
    for (String name : names) {
      String m = models.admit(name);
      hedgeCounters(m);
      if (races) {
        raceCounter(m);
      }
    }
  }

  private Counter[] hedgeCounters(String modelLabel) {
    return hedges.computeIfAbsent(modelLabel, m -> {
      Counter[] c = new Counter[HedgeOutcome.values().length];
      for (HedgeOutcome o : HedgeOutcome.values()) {
        c[o.ordinal()] = Counter.builder(HEDGES).description("Hedges, by outcome")
            .tags("model", m, "outcome", label(o)).register(registry);
      }
      return c;
    });
  }

  private Counter raceCounter(String modelLabel) {
    return races.computeIfAbsent(modelLabel, m -> Counter.builder(RACES).description("Cold-start races")
        .tag("model", m).register(registry));
  }

  public void wastedTokens(long prompt, long completion) {
    if (prompt > 0) {
      wastedPrompt.increment(prompt);
    }
    if (completion > 0) {
      wastedCompletion.increment(completion);
    }
  }

  /** Registers the hedge-threshold gauge of one backend, model and kind; {@code millis} is read at scrape time. */
  public void hedgeThreshold(String backend, String model, boolean stream, java.util.function.DoubleSupplier millis) {
    Gauge.builder(HEDGE_THRESHOLD, millis::getAsDouble).description("The hedge threshold now").baseUnit("ms")
        .tags("backend", backend, "model", models.label(model), "stream", Boolean.toString(stream))
        .register(registry);
  }

  /** Prometheus text exposition (format 0.0.4). */
  public String scrape() {
    return registry.scrape();
  }

  /** For tests and later features that need their own meters. */
  public PrometheusMeterRegistry registry() {
    return registry;
  }

  private DistributionSummary summary(String name, String description, double[] bucketsMs, Iterable<io.micrometer.core.instrument.Tag> tags) {
    return DistributionSummary.builder(name)
        .description(description)
        .baseUnit("ms")
        .serviceLevelObjectives(bucketsMs)
        .tags(tags)
        .register(registry);
  }

  private static double toMillis(long nanos) {
    return nanos / 1_000_000.0;
  }

  @Override
  public void close() {
    gcMetrics.close();
    for (Meter m : registry.getMeters()) {
      registry.remove(m);
    }
    registry.close();
  }
}
