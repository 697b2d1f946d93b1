package io.llmproxy.admin;

import static java.util.Objects.requireNonNull;

import io.llmproxy.auth.AccessControl;
import io.llmproxy.config.ConfigException;
import io.llmproxy.config.ConfigReload;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.metrics.GatewayMetrics.BackendState;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Router;
import io.llmproxy.stats.LatencyStats;
import io.llmproxy.store.Store;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import java.time.Clock;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The admin API (SPEC §4), on the gateway's own port under {@code /admin/}, for callers holding
 * {@code admin.token}: API keys ({@code /admin/api-keys}), usage totals ({@code /admin/usage}) and
 * the backends' state ({@code /admin/backends}). See {@code docs/ADMIN.md}.
 */
public interface AdminApi {

  /** Answers a request whose path starts with {@code /admin/}, on its event loop. */
  void handle(HttpServerRequest request);

  /**
   * The admin API of a gateway whose config has an admin token.
   *
   * @param access  the key endpoints need its key registry ({@code auth.enabled}); without one they answer 404
   * @param store   where usage totals are; null when the gateway keeps none ({@code /admin/usage} answers 404)
   * @param states  a backend's state as {@code llmproxy_backend_state} shows it
   * @param clock   gives today's UTC day, the default end of a usage report
   */
  static AdminApi create(Vertx vertx, GatewayConfig config, AccessControl access, Store store,
      Supplier<Router> router, LatencyStats stats, Function<Backend, BackendState> states, Reloader reloader,
      Clock clock) {
    if (!config.admin().enabled()) {
      throw new IllegalArgumentException("admin.token is not set: the admin API is off");
    }
    return new AdminHandler(requireNonNull(vertx, "vertx"), config.admin().token(), requireNonNull(access, "access"),
        store, new BackendsView(requireNonNull(router, "router"), requireNonNull(stats, "stats"),
            requireNonNull(states, "states")), requireNonNull(reloader, "reloader"), requireNonNull(clock, "clock"));
  }

  /** {@code POST /admin/reload}: reads the config file again and applies it (blocking; run off the event loops). */
  @FunctionalInterface
  interface Reloader {
    /**
     * @return what the reload changed
     * @throws ConfigException the file has problems (nothing was changed)
     * @throws IllegalStateException there is nothing to reload: no config file, or the gateway is stopping
     */
    ConfigReload reload() throws ConfigException;
  }
}
