package io.llmproxy.usage;

import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.store.Store;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.EnumMap;
import java.util.Map;

/**
 * The usage pipeline's meters (SPEC §7): {@code llmproxy_usage_events_total{outcome}} and the gauge
 * {@code llmproxy_usage_spool_events}. Registering is idempotent, so the recorder and the delivery
 * each ask for the counters on the same registry and share them.
 */
final class UsageMetrics {
  /**
   * Usage events, by outcome, each counted when it happens: {@code recorded} when
   * {@link UsageRecorder#record} queues one (not when it drops it); {@code spooled} when the group commit that put it in the
   * spool returns; {@code delivered} when the webhook answered 2xx; {@code retried} for each immediate
   * retry of a delivery; {@code failed} when an event's attempts are used up and it stays in the spool
   * until the next round; {@code dropped} when it could not be kept (queue over its bound, recorded
   * after close, or the store failed).
   */
  static final String EVENTS = GatewayMetrics.USAGE_EVENTS;
  /** Gauge: events in the spool waiting for the webhook (delivered ones leave it), read at scrape time. */
  static final String SPOOL_EVENTS = GatewayMetrics.USAGE_SPOOL_EVENTS;

  /** What happened to a usage event. */
  enum Outcome { RECORDED, SPOOLED, DELIVERED, RETRIED, FAILED, DROPPED }

  private final Map<Outcome, Counter> counters = new EnumMap<>(Outcome.class);

  UsageMetrics(MeterRegistry registry) {
    for (Outcome o : Outcome.values()) {
      counters.put(o, Counter.builder(EVENTS).description("Usage events, by outcome")
          .tag("outcome", GatewayMetrics.label(o)).register(registry));
    }
  }

  Counter counter(Outcome outcome) {
    return counters.get(outcome);
  }

  /** Registers the spool gauge; a closed store reads as NaN rather than failing the scrape. */
  static void spoolGauge(MeterRegistry registry, Store store) {
    Gauge.builder(SPOOL_EVENTS, store, s -> {
      try {
        return s.spool().size();
      } catch (RuntimeException e) {
        return Double.NaN;
      }
    }).description("Usage events in the spool waiting for the webhook").strongReference(true).register(registry);
  }
}
