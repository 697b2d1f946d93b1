package io.llmproxy.config;

import java.time.Duration;

/**
 * {@code health_check}. Defaults: enabled, every 5s, {@code /health}, timeout 3s, healthy after 1
 * success, unhealthy after 2 failures. {@code enabled: false} turns active checks off (an llmproxy
 * extension, for backends without a health endpoint).
 */
public record HealthCheckConfig(
    boolean enabled,
    Duration interval,
    String path,
    Duration timeout,
    int healthyThreshold,
    int unhealthyThreshold) {}
