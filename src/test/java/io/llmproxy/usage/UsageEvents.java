package io.llmproxy.usage;

import io.micrometer.core.instrument.MeterRegistry;
import java.time.Instant;

/** Usage events and metric reads for the usage tests. */
final class UsageEvents {
  private UsageEvents() {}

  static UsageEvent event(String requestId, String keyId, Instant at, long prompt, long completion) {
    return new UsageEvent(requestId, at, keyId, keyId == null ? null : "name-" + keyId, null, "m", "b1",
        prompt, completion, false, true, 200, false, 12.5);
  }

  static UsageEvent event(String requestId) {
    return event(requestId, "k1", Instant.now(), 10, 5);
  }

  /** {@code llmproxy_usage_events_total{outcome}} as the registry holds it. */
  static double events(MeterRegistry registry, String outcome) {
    return registry.get(UsageMetrics.EVENTS).tag("outcome", outcome).counter().count();
  }

  /** {@code llmproxy_usage_spool_events}. */
  static double spoolGauge(MeterRegistry registry) {
    return registry.get(UsageMetrics.SPOOL_EVENTS).gauge().value();
  }
}
