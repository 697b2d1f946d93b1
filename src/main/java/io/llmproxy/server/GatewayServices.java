package io.llmproxy.server;

import io.llmproxy.admin.AdminApi;
import io.llmproxy.auth.AccessControl;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.proxy.ProxyServices;
import io.llmproxy.proxy.Timeouts;
import io.llmproxy.routing.Router;
import java.util.concurrent.atomic.AtomicReference;

/**
 * What every event loop's server shares: the router of the config now in force (a reload replaces
 * it), metrics, logs, readiness, and what
 * the dispatches share (the timeout wheel, latency statistics, the hedging budget), access control,
 * the usage ledger (null when nothing needs usage: no auth and no usage hook), and the admin API
 * (null when {@code admin.token} is not set).
 */
record GatewayServices(
    AtomicReference<Router> live,
    GatewayMetrics metrics,
    AccessLog accessLog,
    ModelCatalog models,
    Readiness readiness,
    ProxyServices proxy,
    AccessControl access,
    UsageLedger usage,
    AdminApi admin) {

  /** The router of the config now in force: each request takes it once, when it is routed. */
  Router router() {
    return live.get();
  }

  /** The config now in force (after a reload, the one reloaded). */
  GatewayConfig config() {
    return live.get().config();
  }

  Timeouts timeouts() {
    return proxy.timeouts();
  }
}
