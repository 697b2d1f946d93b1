package io.llmproxy.routing;

import static java.util.Objects.requireNonNull;

import io.llmproxy.config.BackendConfig;
import io.llmproxy.health.PassiveHealth;
import io.llmproxy.health.PassiveHealth.Admission;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.net.URI;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A backend at run time: its config, where requests go, how many are in flight, what its active
 * health check says, and its passive health ({@link PassiveHealth}). Shared by all event loops, so
 * its mutable state is atomic or locked.
 *
 * <p>How the two kinds of health combine (SPEC §6.5): a backend takes traffic only when the active
 * check does not say it is down <em>and</em> its passive state admits it. Either one alone takes it
 * out: a {@code /health} that answers while inference fails does not bring an ejected backend back,
 * and a backend whose health check fails is out whatever its recent requests did. A backend coming
 * back up by its health check keeps its passive state. {@code /ready} follows the active checks.
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
  private final String authority;
  private final boolean ssl;
  private final String basePath;
  private final boolean basePathEndsWithV1;
  private final long seed;
  private final State state;
  /** Whether active health checks run: without them its health is always UP. */
  private final boolean activeChecks;
  private final PassiveHealth passive;

  /**
   * What a backend keeps across config reloads while its name and URL stay the same: its requests in
   * flight and what its health check last said. A reload makes a new {@link Backend} around the same
   * state, so requests started before it release their slots where the new one counts them.
   */
  public static final class State {
    private final AtomicInteger inflight = new AtomicInteger();
    private volatile Health health = Health.UNKNOWN;
    /** The backend left the config: requests started before may still use it, none after. */
    private volatile boolean retired;

    public State() {}

    /** A reload removed the backend (or changed its URL): its connections are not kept once given back. */
    public void retire() {
      retired = true;
    }

    public boolean retired() {
      return retired;
    }

    /** Health checks were turned on by a reload: until one finishes, the verdict is unknown, as at a start. */
    public void checksRestarted() {
      health = Health.UNKNOWN;
    }
  }

  /** A backend without passive health (outlier detection off). */
  public Backend(BackendConfig config, int index, boolean activeChecks) {
    this(config, index, activeChecks, null);
  }

  /** @param passive its passive health, or null when outlier detection is off */
  public Backend(BackendConfig config, int index, boolean activeChecks, PassiveHealth passive) {
    this(config, index, new State(), activeChecks, passive);
  }

  /**
   * A backend around {@code state}, which an earlier generation of the same backend (same name and
   * URL) may share.
   *
   * @param activeChecks whether health checks run: until one finishes its health is UNKNOWN; without
   *                     them it is UP, whatever an earlier generation's checks said
   * @param passive      its passive health, or null when outlier detection is off
   */
  public Backend(BackendConfig config, int index, State state, boolean activeChecks, PassiveHealth passive) {
    this.config = requireNonNull(config, "config");
    this.index = index;
    this.models = Glob.all(config.models());
    URI url = config.url();
    this.ssl = "https".equalsIgnoreCase(url.getScheme());
    this.host = url.getHost();
    this.port = url.getPort() > 0 ? url.getPort() : (ssl ? 443 : 80);
    this.authority = port == (ssl ? 443 : 80) ? host : host + ':' + port;
    String path = url.getRawPath() == null ? "" : url.getRawPath();
    while (path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    this.basePath = path;
    this.basePathEndsWithV1 = path.endsWith("/v1");
    this.seed = Rendezvous.seed(config.name());
    this.state = requireNonNull(state, "state");
    this.activeChecks = activeChecks;
    this.passive = passive;
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

  /** The {@code Host} header for this backend: the host, and the port unless it is the scheme's default. */
  public String authority() {
    return authority;
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
   * A GET of one of the backend's own endpoints (health, model list), with its headers and API key
   * as its requests carry them (a backend behind its own auth header answers 401 without), failing
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
    config.headers().forEach(options::putHeader);
    String key = config.apiKey();
    if (key != null && !key.isEmpty()) {
      options.putHeader(HttpHeaders.AUTHORIZATION, "Bearer " + key);
    }
    return options;
  }

  /** What it shares with the other generations of the same backend (its identity across reloads). */
  public State state() {
    return state;
  }

  public int inflight() {
    return state.inflight.get();
  }

  /** True when {@code max_concurrent} would allow one more request. */
  public boolean hasCapacity() {
    int max = config.maxConcurrent();
    return max <= 0 || state.inflight.get() < max;
  }

  /**
   * Takes an in-flight slot for one request, if {@code max_concurrent} and the passive health allow
   * it; in panic mode ({@code panic}) the passive health is not asked. The result says whether the
   * request is a half-open canary, whose outcome must be reported as one.
   */
  public Admission tryAcquire(boolean panic) {
    Admission a = passive == null || panic ? Admission.NORMAL : passive.tryAdmit();
    if (a == Admission.REFUSED) {
      return a;
    }
    if (takeSlot()) {
      return a;
    }
    if (a == Admission.CANARY) {
      passive.abandoned(true);
    }
    return Admission.REFUSED;
  }

  private boolean takeSlot() {
    int max = config.maxConcurrent();
    AtomicInteger inflight = state.inflight;
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
    state.inflight.decrementAndGet();
  }

  public Health health() {
    return activeChecks ? state.health : Health.UP;
  }

  public void health(Health h) {
    state.health = requireNonNull(h, "h");
  }

  /** Routable when the health check does not say it is down and its passive health admits it. */
  public boolean routable() {
    return health() != Health.DOWN && (passive == null || passive.admits());
  }

  /** Its weight now: the configured weight, scaled down while it ramps up after a cooldown. */
  public double effectiveWeight() {
    return passive == null ? config.weight() : config.weight() * passive.weightFactor();
  }

  /** Nanoseconds until its cooldown ends (0 when not cooling); orders the candidates in panic mode. */
  public long cooldownRemainingNanos() {
    return passive == null ? 0 : passive.cooldownRemainingNanos();
  }

  /** Its passive health, or null when outlier detection is off. */
  public PassiveHealth passive() {
    return passive;
  }

  /** The backend answered (a 2xx, or a 4xx of its own). */
  public void succeeded(boolean canary) {
    if (passive != null) {
      passive.success(canary);
    }
  }

  /** A request to it failed; {@code retryAfterNanos} is a 429's retry-after, or 0. */
  public void failed(PassiveHealth.Failure failure, long retryAfterNanos, boolean canary) {
    if (passive != null) {
      passive.failure(failure, retryAfterNanos, canary);
    }
  }

  /** A request to it ended with no outcome (cancelled before the backend answered). */
  public void abandoned(boolean canary) {
    if (passive != null) {
      passive.abandoned(canary);
    }
  }

  @Override
  public String toString() {
    return name();
  }
}
