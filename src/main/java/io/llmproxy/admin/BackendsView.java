package io.llmproxy.admin;

import static io.llmproxy.metrics.GatewayMetrics.label;

import io.llmproxy.config.BackendConfig;
import io.llmproxy.config.RoutingConfig.HedgeConfig;
import io.llmproxy.metrics.GatewayMetrics.BackendState;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Router;
import io.llmproxy.stats.LatencyStats;
import io.llmproxy.stats.LatencyWindow;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * {@code GET /admin/backends}: each backend's config, its state as {@code llmproxy_backend_state}
 * shows it, in-flight requests, the cooldown left when ejected, and for each model it has served
 * its recent latency percentiles (TTFT for streams, total latency otherwise) with the hedge threshold
 * they give. Reads only what is in memory: cheap enough for the event loop.
 */
final class BackendsView {
  private static final double[] PERCENTILES = {50, 95, 99};

  /** The router of the config now in force. */
  private final Supplier<Router> router;
  private final LatencyStats stats;
  private final Function<Backend, BackendState> states;

  BackendsView(Supplier<Router> router, LatencyStats stats, Function<Backend, BackendState> states) {
    this.router = router;
    this.stats = stats;
    this.states = states;
  }

  private record Latency(String model, LatencyStats.Kind kind, LatencyWindow window) {}

  JsonObject render() {
    Map<String, List<Latency>> latencies = new HashMap<>();
    stats.forEach((backend, model, kind, entry) ->
        latencies.computeIfAbsent(backend, b -> new ArrayList<>()).add(new Latency(model, kind, entry.window())));
    long now = stats.now();
    Router r = router.get();
    HedgeConfig hedge = r.config().routing().hedge();
    JsonArray data = new JsonArray();
    for (Backend b : r.backends()) {
      BackendConfig c = b.config();
      BackendState state = states.apply(b);
      long cooldown = state == BackendState.EJECTED ? b.cooldownRemainingNanos() : 0;
      data.add(new JsonObject()
          .put("name", b.name())
          .put("url", c.url().toString())
          .put("region", c.region())
          .put("weight", c.weight())
          .put("effective_weight", b.effectiveWeight())
          .put("models", new JsonArray(new ArrayList<>(c.models())))
          .put("max_concurrent", c.maxConcurrent())
          .put("state", label(state))
          .put("health_check", label(b.health()))
          .put("inflight", b.inflight())
          .put("cooldown_remaining_ms", state == BackendState.EJECTED ? (cooldown + 999_999) / 1_000_000 : null)
          .put("latency", latency(latencies.getOrDefault(b.name(), List.of()), hedge, now)));
    }
    return new JsonObject()
        .put("object", "list")
        .put("data", data)
        .put("hedge", hedgeSettings(hedge));
  }

  private static JsonArray latency(List<Latency> entries, HedgeConfig hedge, long now) {
    JsonArray out = new JsonArray();
    entries.stream()
        .sorted(Comparator.comparing(Latency::model).thenComparing(Latency::kind))
        .forEach(l -> {
          long[] p = l.window().percentilesNanos(PERCENTILES, now);
          JsonObject o = new JsonObject()
              .put("model", l.model().isEmpty() ? null : l.model())
              .put("kind", label(l.kind()))
              .put("samples", l.window().count(now))
              .put("p50_ms", ms(p[0]))
              .put("p95_ms", ms(p[1]))
              .put("p99_ms", ms(p[2]));
          if (hedge.enabled()) {
            o.put("hedge_threshold_ms", hedge.thresholdNanos(pct -> l.window().percentileNanos(pct, now)) / 1e6);
          }
          out.add(o);
        });
    return out;
  }

  private static JsonObject hedgeSettings(HedgeConfig hedge) {
    JsonObject o = new JsonObject().put("enabled", hedge.enabled());
    if (hedge.enabled()) {
      o.put("threshold", hedge.threshold().fixed() != null ? hedge.threshold().fixed().toMillis() + "ms"
              : "p" + trim(hedge.threshold().percentile()))
          .put("min_threshold_ms", hedge.minThreshold().toMillis())
          .put("max_threshold_ms", hedge.maxThreshold().toMillis())
          .put("max_parallel", hedge.maxParallel())
          .put("budget_percent", hedge.budgetPercent());
    }
    return o;
  }

  /** Nanoseconds as milliseconds; null when the window is empty. */
  private static Double ms(long nanos) {
    return nanos < 0 ? null : nanos / 1e6;
  }

  private static String trim(double d) {
    return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
  }
}
