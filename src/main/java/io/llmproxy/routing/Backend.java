package io.llmproxy.routing;

import static java.util.Objects.requireNonNull;

import io.llmproxy.config.BackendConfig;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.net.URI;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A backend at run time: its config, where requests go, how many are in flight, and whether its
 * active health check says it is up. Shared by all event loops, so its mutable state is atomic.
 */
public final class Backend {

  /** What the active health check last concluded. */
  public enum Health {
    /** No check has finished yet: routable, but not counted as ready. */
    UNKNOWN,
    UP,
    DOWN
  }

  private final BackendConfig config;
  private final int index;
  private final List<Glob> models;
  private final String host;
  private final int port;
  private final boolean ssl;
  private final String basePath;
  private final boolean basePathEndsWithV1;
  private final long seed;
  private final AtomicInteger inflight = new AtomicInteger();
  private volatile Health health;

  public Backend(BackendConfig config, int index, boolean activeChecks) {
    this.config = requireNonNull(config, "config");
    this.index = index;
    this.models = Glob.all(config.models());
    URI url = config.url();
    this.ssl = "https".equalsIgnoreCase(url.getScheme());
    this.host = url.getHost();
    this.port = url.getPort() > 0 ? url.getPort() : (ssl ? 443 : 80);
    String path = url.getRawPath() == null ? "" : url.getRawPath();
    while (path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    this.basePath = path;
    this.basePathEndsWithV1 = path.endsWith("/v1");
    this.seed = Rendezvous.seed(config.name());
    this.health = activeChecks ? Health.UNKNOWN : Health.UP;
  }

  public String name() {
    return config.name();
  }

  public BackendConfig config() {
    return config;
  }

  /** Position in the config's {@code backends} list. */
  public int index() {
    return index;
  }

  public int weight() {
    return config.weight();
  }

  public String host() {
    return host;
  }

  public int port() {
    return port;
  }

  public boolean ssl() {
    return ssl;
  }

  long seed() {
    return seed;
  }

  /** The globs of {@code models}; empty means the backend serves any model. */
  public List<Glob> models() {
    return models;
  }

  public boolean serves(String model) {
    return models.isEmpty() || Glob.anyMatches(models, model);
  }

  /**
   * The upstream request target for a client path and query. The backend URL's path is a prefix; a
   * prefix ending in {@code /v1} (as OpenAI SDK base URLs are written) is not doubled for
   * {@code /v1/...} paths.
   */
  public String target(String pathAndQuery) {
    if (basePath.isEmpty()) {
      return pathAndQuery;
    }
    if (basePathEndsWithV1 && pathAndQuery.startsWith("/v1/")) {
      return basePath + pathAndQuery.substring(3);
    }
    return basePath + pathAndQuery;
  }

  /**
   * A GET of one of the backend's own endpoints (health, model list), with its API key, failing
   * after {@code timeoutMs} without a connection or without data.
   */
  public RequestOptions probe(String path, long timeoutMs) {
    RequestOptions options = new RequestOptions()
        .setMethod(HttpMethod.GET)
        .setHost(host)
        .setPort(port)
        .setSsl(ssl)
        .setURI(target(path))
        .setConnectTimeout(timeoutMs)
        .setIdleTimeout(timeoutMs);
    String key = config.apiKey();
    if (key != null && !key.isEmpty()) {
      options.putHeader(HttpHeaders.AUTHORIZATION, "Bearer " + key);
    }
    return options;
  }

  public int inflight() {
    return inflight.get();
  }

  /** True when {@code max_concurrent} would allow one more request. */
  public boolean hasCapacity() {
    int max = config.maxConcurrent();
    return max <= 0 || inflight.get() < max;
  }

  /** Takes an in-flight slot; false when {@code max_concurrent} is reached. */
  public boolean tryAcquire() {
    int max = config.maxConcurrent();
    if (max <= 0) {
      inflight.incrementAndGet();
      return true;
    }
    while (true) {
      int n = inflight.get();
      if (n >= max) {
        return false;
      }
      if (inflight.compareAndSet(n, n + 1)) {
        return true;
      }
    }
  }

  public void release() {
    inflight.decrementAndGet();
  }

  public Health health() {
    return health;
  }

  public void health(Health h) {
    this.health = requireNonNull(h, "h");
  }

  /** Routable unless the health check says it is down. */
  public boolean routable() {
    return health != Health.DOWN;
  }

  @Override
  public String toString() {
    return name();
  }
}
