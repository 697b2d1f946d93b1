package io.llmproxy.server;

import io.llmproxy.admin.AdminApi;
import io.llmproxy.auth.AccessControl;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.proxy.ProxyServices;
import io.llmproxy.proxy.Timeouts;
import io.llmproxy.routing.Router;

/**
 * What every event loop's server shares: the config, the router, metrics, logs, readiness, and what
 * the dispatches share (the timeout wheel, latency statistics, the hedging budget), access control,
 * the usage ledger (null when nothing needs usage: no auth and no usage hook), and the admin API
 * (null when {@code admin.token} is not set).
 */
record GatewayServices(
    GatewayConfig config,
    Router router,
    GatewayMetrics metrics,
    AccessLog accessLog,
    ModelCatalog models,
    Readiness readiness,
    ProxyServices proxy,
    AccessControl access,
    UsageLedger usage,
    AdminApi admin) {

  Timeouts timeouts() {
    return proxy.timeouts();
  }
}
