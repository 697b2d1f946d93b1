package io.llmproxy.proxy;

import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.routing.HedgeBudget;
import io.llmproxy.stats.LatencyStats;

/**
 * What every dispatch shares, whatever its event loop: the timeout wheel, the metrics, the latency
 * statistics and the hedging budget.
 */
public record ProxyServices(Timeouts timeouts, GatewayMetrics metrics, LatencyStats stats, HedgeBudget budget) {}
