package io.llmproxy.server;

import io.llmproxy.config.GatewayConfig;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.proxy.Timeouts;
import io.llmproxy.routing.Router;

/** What every event loop's server shares: the config, the router, metrics, logs, readiness and the timeout wheel. */
record GatewayServices(
    GatewayConfig config,
    Router router,
    GatewayMetrics metrics,
    AccessLog accessLog,
    ModelCatalog models,
    Readiness readiness,
    Timeouts timeouts) {}
