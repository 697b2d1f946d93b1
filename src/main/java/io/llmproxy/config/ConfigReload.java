package io.llmproxy.config;

import static java.util.Objects.requireNonNull;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What a reload of the config file (SIGHUP, {@code POST /admin/reload}) changes in a running
 * gateway, and what it cannot.
 *
 * <p>Taken at once, for the requests that start after the reload: {@code backends}, {@code
 * load_balance_strategy}, {@code routing}, {@code health_check}, {@code outlier_detection}, {@code
 * api_keys}, {@code limits} (except {@code client_keep_alive_timeout}), {@code logging.level} and,
 * while rate limiting stays on, the {@code rate_limit} values ({@code global}, {@code per_key}).
 * Everything else is bound to what the process opened at start (the listening socket, the event
 * loops' transport, the store, the pools, the log output), so a change there waits for a restart:
 * the reload names it, and the gateway keeps running on the value it started with.
 *
 * @param effective    the config the gateway runs on after the reload: the new file's reloadable
 *                     settings, the running config's others
 * @param applied      what changed and is taken now, one line each ({@code backends: added gpu-3})
 * @param needRestart  the keys that changed but wait for a restart, in the file's order
 */
public record ConfigReload(GatewayConfig effective, List<String> applied, List<String> needRestart) {

  public ConfigReload {
    requireNonNull(effective, "effective");
    applied = List.copyOf(applied);
    needRestart = List.copyOf(needRestart);
  }

  /** Whether the new file changes anything at all. */
  public boolean changed() {
    return !applied.isEmpty() || !needRestart.isEmpty();
  }

  /** The reload of {@code next} into a gateway running on {@code running}. */
  public static ConfigReload of(GatewayConfig running, GatewayConfig next) {
    requireNonNull(running, "running");
    requireNonNull(next, "next");
    List<String> restart = new ArrayList<>();
    changed(restart, "listen", running.listen(), next.listen());
    changed(restart, "transport", running.transport(), next.transport());
    // The limits themselves apply while rate limiting stays on in the same storage; turning it on or
    // off, or moving it, waits for a restart (the requests in flight were counted by the one running).
    boolean ratesApply = running.rateLimit().enabled() && next.rateLimit().enabled()
        && running.rateLimit().storage() == next.rateLimit().storage();
    RateLimitConfig rates = ratesApply ? next.rateLimit() : running.rateLimit();
    if (!ratesApply) {
      changed(restart, "rate_limit", running.rateLimit(), next.rateLimit());
    }
    changed(restart, "auth", running.auth(), next.auth());
    changed(restart, "admin", running.admin(), next.admin());
    changed(restart, "usage_hook", running.usageHook(), next.usageHook());
    changed(restart, "metrics", running.metrics(), next.metrics());
    changed(restart, "logging.format", running.logging().format(), next.logging().format());
    changed(restart, "logging.access_log", running.logging().accessLog(), next.logging().accessLog());
    changed(restart, "data_dir", running.dataDir(), next.dataDir());
    changed(restart, "upstream", running.upstream(), next.upstream());
    changed(restart, "drain_timeout", running.drainTimeout(), next.drainTimeout());
    changed(restart, "limits.client_keep_alive_timeout", running.limits().clientKeepAliveTimeout(),
        next.limits().clientKeepAliveTimeout());

    GatewayConfig.LimitsConfig limits = new GatewayConfig.LimitsConfig(next.limits().maxBodySizeBytes(),
        running.limits().clientKeepAliveTimeout(), next.limits().clientBodyTimeout(),
        next.limits().clientSendTimeout());
    GatewayConfig.LoggingConfig logging = new GatewayConfig.LoggingConfig(running.logging().format(),
        next.logging().level(), running.logging().accessLog());
    GatewayConfig effective = new GatewayConfig(running.listen(), next.backends(), next.strategy(), next.routing(),
        next.healthCheck(), next.outlierDetection(), rates, running.auth(), running.admin(),
        next.apiKeys(), running.usageHook(), running.metrics(), logging, running.dataDir(), limits,
        running.upstream(), running.drainTimeout(), running.transport(), next.explicitSections());

    List<String> applied = new ArrayList<>();
    String backends = backendChanges(running.backends(), next.backends());
    if (backends != null) {
      applied.add("backends: " + backends);
    }
    changed(applied, "load_balance_strategy", running.strategy(), next.strategy());
    changed(applied, "routing", running.routing(), next.routing());
    changed(applied, "health_check", running.healthCheck(), next.healthCheck());
    changed(applied, "outlier_detection", running.outlierDetection(), next.outlierDetection());
    if (running.auth().enabled()) { // else no key is checked, and the reload's warnings say so
      changed(applied, "api_keys", running.apiKeys(), next.apiKeys());
    }
    changed(applied, "limits", running.limits(), limits);
    changed(applied, "rate_limit", running.rateLimit(), rates);
    changed(applied, "logging.level", running.logging().level(), logging.level());
    return new ConfigReload(effective, applied, restart);
  }

  private static void changed(List<String> out, String key, Object running, Object next) {
    if (!Objects.equals(running, next)) {
      out.add(key);
    }
  }

  /**
   * The backends added, removed and changed, by name ({@code added gpu-3; changed gpu-1}); null when
   * none. A backend keeps its name across a reload; one whose URL changes starts afresh (no requests
   * in flight counted, health unknown).
   */
  static String backendChanges(List<BackendConfig> running, List<BackendConfig> next) {
    Map<String, BackendConfig> before = new LinkedHashMap<>();
    running.forEach(b -> before.put(b.name(), b));
    List<String> added = new ArrayList<>();
    List<String> changed = new ArrayList<>();
    for (BackendConfig b : next) {
      BackendConfig old = before.remove(b.name());
      if (old == null) {
        added.add(b.name());
      } else if (!old.equals(b)) {
        changed.add(b.name());
      }
    }
    List<String> parts = new ArrayList<>();
    if (!added.isEmpty()) {
      parts.add("added " + String.join(", ", added));
    }
    if (!before.isEmpty()) {
      parts.add("removed " + String.join(", ", before.keySet()));
    }
    if (!changed.isEmpty()) {
      parts.add("changed " + String.join(", ", changed));
    }
    if (parts.isEmpty()) {
      List<String> a = running.stream().map(BackendConfig::name).toList();
      List<String> b = next.stream().map(BackendConfig::name).toList();
      return a.equals(b) ? null : "reordered";
    }
    return String.join("; ", parts);
  }
}
