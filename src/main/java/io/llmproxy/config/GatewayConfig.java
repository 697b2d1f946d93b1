package io.llmproxy.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The whole configuration (SPEC §3), validated and with every default filled in. Built only by
 * {@link ConfigLoader}; every nested record is non-null unless its doc says otherwise.
 *
 * @param listen            where the gateway listens
 * @param backends          at least one backend, names unique
 * @param strategy          the load-balancing strategy
 * @param routing           model mapping, retries, fallback, hedging, affinity, timeouts
 * @param healthCheck       active health checks
 * @param outlierDetection  passive health (SPEC §6.5)
 * @param rateLimit         global and per-key limits
 * @param auth              key authentication
 * @param admin             the admin API; {@code token} empty means off
 * @param apiKeys           keys from the config file
 * @param usageHook         the usage webhook
 * @param metrics           the Prometheus endpoint
 * @param logging           log format, level and the access log
 * @param dataDir           the embedded store and the usage spool
 * @param limits            request limits
 * @param upstream          the upstream connection pool
 * @param drainTimeout      how long SIGTERM waits for in-flight requests
 * @param transport         the sockets' I/O: epoll, io_uring or NIO
 * @param explicitSections  dotted paths of the optional sections present in the file
 *                          (for example {@code routing.hedge}, {@code rate_limit}), so features that
 *                          do not exist yet can say so instead of being silently ignored
 */
public record GatewayConfig(
    ListenAddress listen,
    List<BackendConfig> backends,
    Strategy strategy,
    RoutingConfig routing,
    HealthCheckConfig healthCheck,
    OutlierDetectionConfig outlierDetection,
    RateLimitConfig rateLimit,
    AuthConfig auth,
    AdminConfig admin,
    List<ApiKeyConfig> apiKeys,
    UsageHookConfig usageHook,
    MetricsConfig metrics,
    LoggingConfig logging,
    Path dataDir,
    LimitsConfig limits,
    UpstreamConfig upstream,
    Duration drainTimeout,
    IoTransport transport,
    Set<String> explicitSections) {

  /**
   * What this config asks for that the gateway will not do as written, each said at startup (as a
   * WARN) and by {@code llmproxy validate}: settings that are valid but have no effect, or a weaker one.
   */
  public List<String> warnings() {
    List<String> w = new ArrayList<>();
    if (auth.enabled() && auth.storage() == AuthConfig.Storage.REDIS) {
      w.add("auth.storage: redis is not supported yet; keys and quota counters are kept in " + dataDir);
    }
    if (!auth.enabled() && !apiKeys.isEmpty()) {
      w.add("api_keys are listed but auth.enabled is false: every request is let in without a key");
    }
    if (rateLimit.enabled() && rateLimit.storage() == RateLimitConfig.Storage.REDIS) {
      w.add("rate_limit.storage: redis is not supported yet; each gateway limits on its own (memory)");
    }
    if (!rateLimit.enabled() && (limits(rateLimit.perKey()) || apiKeys.stream().anyMatch(k -> limits(k.rateLimit())))) {
      w.add("per-key rate limits are set (rate_limit.per_key or api_keys[].rate_limit) but rate_limit.enabled is"
          + " false: none of them is enforced");
    }
    if (rateLimit.enabled() && !auth.enabled() && limits(rateLimit.perKey())) {
      w.add("rate_limit.per_key limits each key, but auth.enabled is false: requests carry no key, so only"
          + " rate_limit.global applies");
    }
    if (admin.enabled() && !auth.enabled()) {
      w.add("admin: the key endpoints need auth.enabled: true; /admin/api-keys answers 404 until then");
    }
    return w;
  }

  private static boolean limits(KeyLimits l) {
    return l != null && (positive(l.requestsPerSecond()) || positive(l.requestsPerMinute())
        || positive(l.tokensPerMinute()) || positive(l.maxConcurrent()));
  }

  private static boolean positive(Number n) {
    return n != null && n.doubleValue() > 0;
  }

  /** {@code listen: ":8080"}; host {@code 0.0.0.0} when omitted, port 0 picks a free port. */
  public record ListenAddress(String host, int port) {
    @Override
    public String toString() {
      return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
  }

  /**
   * {@code limits}. A zero duration turns its limit off.
   *
   * @param maxBodySizeBytes        a request body larger than this gets 413
   * @param clientKeepAliveTimeout  a client connection with no request in progress is closed after this long
   * @param clientBodyTimeout       a request whose body stops arriving for this long gets 408 and its
   *                                connection is closed
   * @param clientSendTimeout       a client that takes none of its response for this long (its write
   *                                queue stays full) is disconnected and the upstream request cancelled
   */
  public record LimitsConfig(long maxBodySizeBytes, Duration clientKeepAliveTimeout, Duration clientBodyTimeout,
      Duration clientSendTimeout) {}

  /** {@code metrics}. */
  public record MetricsConfig(boolean enabled, String path) {}

  /** {@code logging}. {@code level} is a Logback level name (trace..error), lower case. */
  public record LoggingConfig(LogFormat format, String level, boolean accessLog) {}

  /** {@code logging.format}. */
  public enum LogFormat { JSON, TEXT }

  /**
   * {@code upstream}: the keep-alive pool to the backends (not in SPEC §3; an llmproxy extension).
   *
   * @param maxConnectionsPerBackend  HTTP/1.1 connections per backend, across all event loops
   * @param keepAliveTimeout          an idle pooled connection is closed after this long
   * @param maxWaitQueue              requests that may wait for a connection per backend; -1 = no cap
   */
  public record UpstreamConfig(int maxConnectionsPerBackend, Duration keepAliveTimeout, int maxWaitQueue) {}
}
