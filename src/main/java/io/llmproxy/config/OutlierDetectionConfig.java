package io.llmproxy.config;

import java.time.Duration;

/**
 * {@code outlier_detection} (SPEC §6.5). Defaults as in SPEC §3; on unless {@code enabled: false}.
 */
public record OutlierDetectionConfig(
    boolean enabled,
    int consecutiveFailures,
    double failureRate,
    int minRequests,
    Duration window,
    Duration baseCooldown,
    Duration maxCooldown,
    int halfOpenRequests,
    Duration slowStart) {}
