package io.llmproxy.config;

import com.fasterxml.jackson.databind.JsonNode;
import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.GatewayConfig.LimitsConfig;
import io.llmproxy.config.GatewayConfig.ListenAddress;
import io.llmproxy.config.GatewayConfig.LogFormat;
import io.llmproxy.config.GatewayConfig.LoggingConfig;
import io.llmproxy.config.GatewayConfig.MetricsConfig;
import io.llmproxy.config.GatewayConfig.UpstreamConfig;
import io.llmproxy.config.RoutingConfig.FallbackRule;
import io.llmproxy.config.RoutingConfig.FirstTokenMode;
import io.llmproxy.config.RoutingConfig.HedgeConfig;
import io.llmproxy.config.RoutingConfig.HedgeThreshold;
import io.llmproxy.config.RoutingConfig.RetryConfig;
import io.llmproxy.config.RoutingConfig.SessionAffinityConfig;
import io.llmproxy.config.RoutingConfig.TimeoutsConfig;
import java.net.URI;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/** Binds the YAML tree to the config records, with SPEC §3's defaults, and validates it. */
final class ConfigBinder {

  /** The optional sections whose presence {@link GatewayConfig#explicitSections()} reports. */
  static final List<String> OPTIONAL_SECTIONS = List.of(
      "routing.hedge", "outlier_detection", "rate_limit", "auth", "api_keys", "usage_hook", "admin",
      "routing.session_affinity", "health_check", "routing.retry", "routing.fallback", "routing.timeouts",
      "upstream", "limits", "metrics", "logging", "data_dir");

  /** Suggestions for top-level keys that belong somewhere else. */
  static final Map<String, String> HINTS = Map.of(
      "model_mapping", "routing.model_mapping",
      "retry", "routing.retry",
      "fallback", "routing.fallback",
      "hedge", "routing.hedge",
      "session_affinity", "routing.session_affinity",
      "timeouts", "routing.timeouts",
      "max_body_size", "limits.max_body_size",
      "strategy", "load_balance_strategy");

  private static final List<String> LOG_LEVELS = List.of("trace", "debug", "info", "warn", "error");
  private static final Pattern HEADER_NAME = Pattern.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
  /** Headers a backend's {@code headers} may not set: they frame the request or belong to one hop. */
  private static final Set<String> RESERVED_HEADERS = Set.of("host", "content-length", "transfer-encoding",
      "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect");
  private static final long MAX_BODY_SIZE = 1L << 30;

  private static final Duration MS_20 = Duration.ofMillis(20);
  private static final Duration MS_500 = Duration.ofMillis(500);

  private ConfigBinder() {}

  static GatewayConfig bind(ConfigNode root, JsonNode tree) {
    ConfigNode top = root.asSection();
    ListenAddress listen = top.get("listen").parse(ValueParsers::listen, new ListenAddress("0.0.0.0", 8080));
    BackendsResult backends = backends(top.get("backends"));
    Strategy strategy = top.get("load_balance_strategy").enumValue(Strategy.class, Strategy.WEIGHTED_ROUND_ROBIN);
    RoutingConfig routing = routing(top.section("routing"), backends);
    HealthCheckConfig healthCheck = healthCheck(top.section("health_check"));
    OutlierDetectionConfig outlierDetection = outlierDetection(top.section("outlier_detection"));
    RateLimitConfig rateLimit = rateLimit(top.section("rate_limit"));
    AuthConfig auth = auth(top.section("auth"));
    String adminToken = secret(top.section("admin").get("token"));
    AdminConfig admin = new AdminConfig(adminToken == null ? "" : adminToken);
    List<ApiKeyConfig> apiKeys = apiKeys(top.get("api_keys"));
    UsageHookConfig usageHook = usageHook(top.section("usage_hook"));
    MetricsConfig metrics = metrics(top.section("metrics"));
    LoggingConfig logging = logging(top.section("logging"));
    Path dataDir = dataDir(top.get("data_dir"));
    LimitsConfig limits = limits(top.section("limits"));
    UpstreamConfig upstream = upstream(top.section("upstream"));
    Duration drainTimeout = top.get("drain_timeout").duration(Duration.ofSeconds(30));
    IoTransport transport = top.get("transport").enumValue(IoTransport.class, IoTransport.AUTO);
    return new GatewayConfig(listen, backends.backends(), strategy, routing, healthCheck, outlierDetection,
        rateLimit, auth, admin, apiKeys, usageHook, metrics, logging, dataDir, limits, upstream, drainTimeout,
        transport, explicitSections(tree));
  }

  // ---- backends ----

  /**
   * @param unusable references (written names and URLs) of backends that had problems, so that a
   *                 fallback naming one of them does not add a second, confusing problem
   */
  private record BackendsResult(List<BackendConfig> backends, Set<String> unusable) {}

  private static BackendsResult backends(ConfigNode list) {
    List<BackendConfig> backends = new ArrayList<>();
    Set<String> unusable = new HashSet<>();
    if (!list.isPresent()) {
      list.problem("at least one backend is required, for example: backends: [{url: \"http://localhost:8000\"}]");
      return new BackendsResult(List.of(), unusable);
    }
    List<ConfigNode> items = list.items();
    if (items.isEmpty() && list.isList()) {
      list.problem("at least one backend is required");
    }
    Map<String, Integer> names = new HashMap<>();
    for (int i = 0; i < items.size(); i++) {
      ConfigNode item = items.get(i);
      if (!isMapping(item, "{url: \"http://gpu-1:8000\"}")) {
        continue;
      }
      ConfigNode b = item.asSection();
      ConfigNode urlNode = b.get("url");
      String urlText = urlNode.text();
      URI url = null;
      if (urlText == null) {
        if (!urlNode.isPresent()) {
          urlNode.problem("required, for example url: \"http://gpu-1:8000\"");
        }
      } else if (urlText.isBlank()) {
        urlNode.problem("required; must not be empty");
      } else {
        try {
          url = ValueParsers.httpUrl(urlText, false);
        } catch (IllegalArgumentException e) {
          urlNode.problem(e.getMessage());
        }
      }
      ConfigNode nameNode = b.get("name");
      String name = nameNode.string(null);
      name = name == null || name.isBlank() ? null : name.strip();
      if (name != null && name.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
        nameNode.problem("must not contain control characters");
        name = null;
      }
      boolean nameWritten = name != null;
      if (name == null && url != null) {
        name = url.getHost() + ":" + ValueParsers.portOf(url);
      }
      int weight = b.get("weight").integer(1, 1);
      List<String> models = b.get("models").stringList();
      String region = b.get("region").string(null);
      String apiKey = secret(b.get("api_key"));
      Map<String, String> headers = headers(b.get("headers"));
      int maxConcurrent = b.get("max_concurrent").integer(0, 0);

      boolean usable = url != null && name != null;
      if (name != null) {
        Integer first = names.putIfAbsent(name, i);
        if (first != null) {
          nameNode.problem("duplicate name '" + name + "' (backends[" + first + "] has it too)"
              + (nameWritten ? "" : "; it comes from host:port, so give these backends distinct names"));
          usable = false;
        }
      }
      if (usable) {
        backends.add(new BackendConfig(url, name, weight, models, region, apiKey,
            Collections.unmodifiableMap(headers), maxConcurrent));
      } else {
        if (urlText != null) {
          unusable.add(urlText.strip());
        }
        if (name != null) {
          unusable.add(name);
        }
      }
    }
    return new BackendsResult(List.copyOf(backends), unusable);
  }

  /** Whether a list item is a mapping; records one problem when it is not. */
  private static boolean isMapping(ConfigNode item, String example) {
    if (item.isMapping()) {
      return true;
    }
    item.problem("expected a mapping, like " + example);
    return false;
  }

  private static Map<String, String> headers(ConfigNode node) {
    Map<String, String> headers = node.stringMap();
    for (Map.Entry<String, String> header : headers.entrySet()) {
      if (!HEADER_NAME.matcher(header.getKey()).matches()) {
        node.get(header.getKey()).problem("not a valid HTTP header name");
      }
      if (RESERVED_HEADERS.contains(header.getKey().toLowerCase(Locale.ROOT))) {
        node.get(header.getKey()).problem("is set by the gateway itself (it frames the request or names the hop)");
      }
      if (header.getValue().strip().chars().anyMatch(c -> (c < 0x20 && c != '\t') || c == 0x7f || c > 0xff)) {
        // the value is not shown: a header may carry a secret
        node.get(header.getKey()).problem("a header value must not contain line breaks, other control characters"
            + " or characters beyond Latin-1");
      }
    }
    Map<String, String> stripped = new LinkedHashMap<>();
    headers.forEach((name, value) -> stripped.put(name, value.strip()));
    return stripped;
  }

  /**
   * A secret (a backend's api_key, the admin token, a client key): its surrounding whitespace
   * dropped, as a value read from a mounted file ends in a line break; one that still holds a control
   * character is refused (it could go into no header, and would fail the gateway later). The
   * value is never in the message. Null when absent or empty.
   */
  static String secret(ConfigNode node) {
    String raw = node.text();
    return raw == null ? null : secret(node, raw);
  }

  private static String secret(ConfigNode node, String raw) {
    String s = raw.strip();
    if (s.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
      node.problem("contains a control character (a line break inside it, say); the value is not shown");
    }
    return s.isEmpty() ? null : s;
  }

  // ---- routing ----

  private static RoutingConfig routing(ConfigNode routing, BackendsResult backends) {
    ConfigNode mappingNode = routing.get("model_mapping");
    Map<String, String> modelMapping = mappingNode.stringMap();
    for (Map.Entry<String, String> entry : modelMapping.entrySet()) {
      if (entry.getKey().isBlank()) {
        mappingNode.get(entry.getKey()).problem("a model name must not be empty");
      }
      if (entry.getValue().isBlank()) {
        mappingNode.get(entry.getKey()).problem("must not be empty");
      }
    }
    RetryConfig retry = retry(routing.section("retry"));
    List<FallbackRule> fallback = fallback(routing.get("fallback"), backends);
    HedgeConfig hedge = hedge(routing.section("hedge"));
    ConfigNode affinityNode = routing.section("session_affinity");
    SessionAffinityConfig sessionAffinity = null;
    if (affinityNode.isPresent()) {
      ConfigNode headerNode = affinityNode.get("header");
      String header = headerNode.nonEmptyString(null);
      if (header == null) {
        if (!headerNode.isPresent()) {
          headerNode.problem("required, for example header: \"x-session-id\"");
        }
      } else if (!HEADER_NAME.matcher(header).matches()) {
        headerNode.problem("not a valid HTTP header name");
      } else {
        sessionAffinity = new SessionAffinityConfig(header);
      }
    }
    TimeoutsConfig timeouts = timeouts(routing.section("timeouts"));
    return new RoutingConfig(Collections.unmodifiableMap(new LinkedHashMap<>(modelMapping)), retry, fallback,
        hedge, sessionAffinity, timeouts);
  }

  private static RetryConfig retry(ConfigNode retry) {
    boolean enabled = retry.get("enabled").bool(true);
    int maxRetries = retry.get("max_retries").integer(2, 0);
    ConfigNode initialWaitNode = retry.get("initial_wait");
    Duration initialWait = initialWaitNode.duration(MS_500);
    ConfigNode maxWaitNode = retry.get("max_wait");
    Duration maxWait = maxWaitNode.duration(Duration.ofSeconds(10));
    if (initialWait.compareTo(maxWait) > 0) {
      initialWaitNode.problem("must not exceed max_wait (" + ValueParsers.format(maxWait)
          + (maxWaitNode.isPresent() ? "" : ", the default") + "), got " + ValueParsers.format(initialWait));
    }
    return new RetryConfig(enabled, maxRetries, initialWait, maxWait);
  }

  private static List<FallbackRule> fallback(ConfigNode list, BackendsResult backends) {
    List<FallbackRule> rules = new ArrayList<>();
    for (ConfigNode item : list.items()) {
      if (!isMapping(item, "{primary: gpu-1, fallback: [gpu-2]}")) {
        continue;
      }
      ConfigNode rule = item.asSection();
      ConfigNode primaryNode = rule.get("primary");
      String primary = resolveBackend(primaryNode, backends);
      ConfigNode fallbackNode = rule.get("fallback");
      List<ConfigNode> fallbackItems = fallbackNode.items();
      if (fallbackItems.isEmpty() && (!fallbackNode.isPresent() || fallbackNode.isList())) {
        fallbackNode.problem("at least one fallback backend is required");
      }
      List<String> chain = new ArrayList<>();
      boolean complete = primary != null;
      for (ConfigNode fallbackItem : fallbackItems) {
        String name = resolveBackend(fallbackItem, backends);
        if (name == null) {
          complete = false;
        } else if (name.equals(primary)) {
          fallbackItem.problem("is the primary itself (" + name + ")");
          complete = false;
        } else if (chain.contains(name)) {
          fallbackItem.problem("lists backend " + name + " twice");
          complete = false;
        } else {
          chain.add(name);
        }
      }
      List<String> models = rule.get("models").stringList();
      if (complete && !chain.isEmpty()) {
        rules.add(new FallbackRule(primary, List.copyOf(chain), models));
      }
    }
    return List.copyOf(rules);
  }

  /**
   * The name of the backend that {@code node} refers to, by name or by URL (ignoring a trailing slash, the
   * case of scheme and host, and a default port); null after recording a problem.
   */
  private static String resolveBackend(ConfigNode node, BackendsResult backends) {
    String reference = node.text();
    if (reference == null || reference.isBlank()) {
      if (reference != null || !node.isPresent()) {
        node.problem("required: the name or URL of a backend");
      }
      return null;
    }
    reference = reference.strip();
    for (BackendConfig backend : backends.backends()) {
      if (backend.name().equals(reference)) {
        return backend.name();
      }
    }
    List<String> matches = new ArrayList<>();
    try {
      String normalized = ValueParsers.normalizedUrl(ValueParsers.httpUrl(reference, true));
      for (BackendConfig backend : backends.backends()) {
        if (ValueParsers.normalizedUrl(backend.url()).equals(normalized)) {
          matches.add(backend.name());
        }
      }
    } catch (IllegalArgumentException e) {
      // not a URL: only a name could match, and none did
    }
    if (matches.size() == 1) {
      return matches.get(0);
    }
    if (matches.size() > 1) {
      node.problem("'" + reference + "' is the URL of several backends (" + String.join(", ", matches)
          + "); refer to one by its name");
    } else if (!backends.unusable().contains(reference)) {
      List<String> known = backends.backends().stream().map(BackendConfig::name).limit(10).toList();
      node.problem("'" + reference + "' is neither the name nor the URL of a backend"
          + (known.isEmpty() ? "" : " (backends: " + String.join(", ", known)
              + (backends.backends().size() > known.size() ? ", ..." : "") + ")"));
    }
    return null;
  }

  private static HedgeConfig hedge(ConfigNode hedge) {
    boolean enabled = hedge.get("enabled").bool(false);
    boolean coldStartRace = hedge.get("cold_start_race").bool(true);
    int minSamples = hedge.get("min_samples").integer(20, 0);
    HedgeThreshold threshold = hedge.get("threshold").parse(ConfigBinder::hedgeThreshold,
        new HedgeThreshold(95.0, null));
    ConfigNode minNode = hedge.get("min_threshold");
    Duration minThreshold = minNode.duration(MS_20);
    Duration maxThreshold = hedge.get("max_threshold").positiveDuration(Duration.ofSeconds(30));
    if (minThreshold.compareTo(maxThreshold) > 0) {
      minNode.problem("must not exceed max_threshold (" + ValueParsers.format(maxThreshold) + "), got "
          + ValueParsers.format(minThreshold));
    }
    int maxParallel = hedge.get("max_parallel").integer(2, 1);
    ConfigNode budgetNode = hedge.get("budget_percent");
    double budgetPercent = budgetNode.decimal(10, 0);
    if (budgetPercent > 100) {
      budgetNode.problem("must be at most 100, got " + budgetPercent);
      budgetPercent = 10;
    }
    FirstTokenMode firstToken = hedge.get("first_token").enumValue(FirstTokenMode.class, FirstTokenMode.CONTENT);
    return new HedgeConfig(enabled, coldStartRace, minSamples, threshold, minThreshold, maxThreshold,
        maxParallel, budgetPercent, firstToken);
  }

  private static HedgeThreshold hedgeThreshold(String text) {
    Double percentile = ValueParsers.percentile(text);
    if (percentile != null) {
      return new HedgeThreshold(percentile, null);
    }
    String s = text.strip();
    if (s.matches("[0-9]+(\\.[0-9]+)?")) {
      throw new IllegalArgumentException("'" + s + "' is neither a percentile (write p" + s
          + ") nor a duration (write " + s + "ms)");
    }
    try {
      return new HedgeThreshold(null, ValueParsers.duration(s));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("expected a percentile such as p95 or p99.9, or a duration such as "
          + "800ms; got '" + s + "'");
    }
  }

  private static TimeoutsConfig timeouts(ConfigNode timeouts) {
    return new TimeoutsConfig(
        timeouts.get("connect").positiveDuration(Duration.ofSeconds(2)),
        timeouts.get("first_token").positiveDuration(Duration.ofSeconds(120)),
        timeouts.get("idle").positiveDuration(Duration.ofSeconds(60)),
        timeouts.get("total").positiveDuration(Duration.ofMinutes(15)));
  }

  // ---- health ----

  private static HealthCheckConfig healthCheck(ConfigNode health) {
    return new HealthCheckConfig(
        health.get("enabled").bool(true),
        health.get("interval").positiveDuration(Duration.ofSeconds(5)),
        urlPath(health.get("path"), "/health"),
        health.get("timeout").positiveDuration(Duration.ofSeconds(3)),
        health.get("healthy_threshold").integer(1, 1),
        health.get("unhealthy_threshold").integer(2, 1));
  }

  private static OutlierDetectionConfig outlierDetection(ConfigNode outlier) {
    boolean enabled = outlier.get("enabled").bool(true);
    int consecutiveFailures = outlier.get("consecutive_failures").integer(3, 1);
    ConfigNode rateNode = outlier.get("failure_rate");
    double failureRate = rateNode.decimal(0.5, 0);
    if (failureRate <= 0 || failureRate > 1) {
      rateNode.problem("must be above 0 and at most 1 (a fraction: 0.5 is 50%), got " + failureRate);
      failureRate = 0.5;
    }
    int minRequests = outlier.get("min_requests").integer(10, 1);
    Duration window = outlier.get("window").positiveDuration(Duration.ofSeconds(30));
    Duration baseCooldown = outlier.get("base_cooldown").positiveDuration(Duration.ofSeconds(5));
    ConfigNode maxNode = outlier.get("max_cooldown");
    Duration maxCooldown = maxNode.positiveDuration(Duration.ofMinutes(5));
    if (maxCooldown.compareTo(baseCooldown) < 0) {
      maxNode.problem("must be at least base_cooldown (" + ValueParsers.format(baseCooldown) + "), got "
          + ValueParsers.format(maxCooldown));
    }
    int halfOpenRequests = outlier.get("half_open_requests").integer(3, 1);
    Duration slowStart = outlier.get("slow_start").duration(Duration.ofSeconds(30));
    return new OutlierDetectionConfig(enabled, consecutiveFailures, failureRate, minRequests, window, baseCooldown,
        maxCooldown, halfOpenRequests, slowStart);
  }

  // ---- limits, auth, keys ----

  private static RateLimitConfig rateLimit(ConfigNode rateLimit) {
    boolean enabled = rateLimit.get("enabled").bool(false);
    RateLimitConfig.Storage storage = rateLimit.get("storage")
        .enumValue(RateLimitConfig.Storage.class, RateLimitConfig.Storage.MEMORY);
    ConfigNode global = rateLimit.section("global");
    double requestsPerSecond = global.get("requests_per_second").decimal(0, 0);
    ConfigNode burstNode = global.get("burst_size");
    Long burst = burstNode.optionalLong(0);
    long defaultBurst = (long) Math.ceil(requestsPerSecond);
    if (burst == null) {
      burst = defaultBurst;
    } else if (burst == 0 && requestsPerSecond > 0) {
      burstNode.problem("must be at least 1 when requests_per_second is set (leave it out for "
          + defaultBurst + ")");
    }
    KeyLimits perKey = keyLimits(rateLimit.section("per_key"));
    return new RateLimitConfig(enabled, storage, new RateLimitConfig.GlobalLimit(requestsPerSecond, burst), perKey);
  }

  private static KeyLimits keyLimits(ConfigNode limits) {
    return new KeyLimits(
        limits.get("requests_per_second").optionalDecimal(0),
        limits.get("requests_per_minute").optionalLong(0),
        limits.get("tokens_per_minute").optionalLong(0),
        limits.get("max_concurrent").optionalInteger(0));
  }

  private static AuthConfig auth(ConfigNode auth) {
    boolean enabled = auth.get("enabled").bool(false);
    AuthConfig.Storage storage = auth.get("storage").enumValue(AuthConfig.Storage.class, AuthConfig.Storage.FILE);
    ConfigNode redis = auth.section("redis");
    ConfigNode addrNode = redis.get("addr");
    String addr = addrNode.nonEmptyString("localhost:6379").strip();
    try {
      ValueParsers.address(addr);
    } catch (IllegalArgumentException e) {
      addrNode.problem(e.getMessage());
    }
    AuthConfig.RedisConfig redisConfig = new AuthConfig.RedisConfig(addr,
        redis.get("password").string(""), redis.get("db").integer(0, 0));
    ConfigNode defaults = auth.section("defaults");
    AuthConfig.KeyDefaults keyDefaults = new AuthConfig.KeyDefaults(
        defaults.get("quota_reset_period").enumValue(QuotaPeriod.class, QuotaPeriod.DAILY),
        defaults.get("total_quota").longValue(0, 0));
    List<String> trustedProxies = addressList(auth.get("trusted_proxies"));
    return new AuthConfig(enabled, storage, redisConfig, keyDefaults, trustedProxies);
  }

  private static List<String> addressList(ConfigNode list) {
    List<String> values = new ArrayList<>();
    for (ConfigNode item : list.items()) {
      String text = item.nonEmptyString(null);
      if (text == null) {
        if (!item.isPresent()) {
          item.problem("must not be empty");
        }
        continue;
      }
      try {
        IpLiterals.checkAddressOrCidr(text);
        values.add(text.strip());
      } catch (IllegalArgumentException e) {
        item.problem(e.getMessage());
      }
    }
    return List.copyOf(values);
  }

  private static List<ApiKeyConfig> apiKeys(ConfigNode list) {
    List<ApiKeyConfig> keys = new ArrayList<>();
    Map<String, Integer> seen = new HashMap<>();
    List<ConfigNode> items = list.items();
    for (int i = 0; i < items.size(); i++) {
      ConfigNode item = items.get(i);
      if (!isMapping(item, "{key: \"${TEAM_KEY}\", name: team}")) {
        continue;
      }
      ConfigNode k = item.asSection();
      ConfigNode keyNode = k.get("key");
      String raw = keyNode.text();
      String key = raw == null ? null : secret(keyNode, raw);
      if (key == null) {
        if (raw != null || !keyNode.isPresent()) {
          keyNode.problem("required");
        }
      } else {
        Integer first = seen.putIfAbsent(key, i);
        if (first != null) {
          keyNode.problem("the same key as api_keys[" + first + "]; each key must be unique");
        }
      }
      ApiKeyConfig config = new ApiKeyConfig(
          key,
          k.get("name").string(null),
          k.get("user_id").string(null),
          k.get("status").enumValue(KeyStatus.class, KeyStatus.ACTIVE),
          k.get("total_quota").optionalLong(0),
          k.get("quota_reset_period").enumValue(QuotaPeriod.class, null),
          addressList(k.get("allowed_ips")),
          k.get("allowed_models").stringList(),
          k.get("expires_at").<Instant>parse(ValueParsers::expiry, null),
          keyLimitsOverride(k.section("rate_limit")));
      if (key != null) {
        keys.add(config);
      }
    }
    return List.copyOf(keys);
  }

  private static KeyLimits keyLimitsOverride(ConfigNode limits) {
    return limits.isPresent() ? keyLimits(limits) : null;
  }

  private static UsageHookConfig usageHook(ConfigNode hook) {
    boolean enabled = hook.get("enabled").bool(false);
    ConfigNode urlNode = hook.get("url");
    String urlText = urlNode.text();
    URI url = null;
    if (urlText != null && !urlText.isBlank()) {
      try {
        url = ValueParsers.httpUrl(urlText, true);
      } catch (IllegalArgumentException e) {
        urlNode.problem(e.getMessage());
      }
    } else if (enabled && (urlText != null || !urlNode.isPresent())) {
      urlNode.problem("required when usage_hook.enabled is true");
    }
    return new UsageHookConfig(enabled, url,
        hook.get("timeout").positiveDuration(Duration.ofSeconds(1)),
        hook.get("retry").integer(2, 0));
  }

  // ---- the rest ----

  private static MetricsConfig metrics(ConfigNode metrics) {
    return new MetricsConfig(metrics.get("enabled").bool(true), urlPath(metrics.get("path"), "/metrics"));
  }

  private static LoggingConfig logging(ConfigNode logging) {
    LogFormat format = logging.get("format").enumValue(LogFormat.class, LogFormat.JSON);
    ConfigNode levelNode = logging.get("level");
    String level = levelNode.nonEmptyString("info").strip().toLowerCase(Locale.ROOT);
    if (!LOG_LEVELS.contains(level)) {
      levelNode.problem("unknown level '" + level + "'; expected one of: " + String.join(", ", LOG_LEVELS));
      level = "info";
    }
    return new LoggingConfig(format, level, logging.get("access_log").bool(true));
  }

  private static Path dataDir(ConfigNode node) {
    String text = node.nonEmptyString("./data");
    try {
      return Path.of(text);
    } catch (InvalidPathException e) {
      node.problem("not a valid path: " + e.getReason());
      return Path.of("./data");
    }
  }

  private static LimitsConfig limits(ConfigNode limits) {
    ConfigNode sizeNode = limits.get("max_body_size");
    long bytes = sizeNode.parse(ValueParsers::byteSize, 32L << 20);
    if (bytes <= 0) {
      sizeNode.problem("must be more than 0 bytes");
      bytes = 32L << 20;
    } else if (bytes > MAX_BODY_SIZE) {
      // Bodies are held in memory (for retries and hedging) in one buffer.
      sizeNode.problem("must be at most 1GiB: bodies are held in memory so they can be retried");
      bytes = 32L << 20;
    }
    // nginx's keepalive_timeout, client_body_timeout and send_timeout defaults; 0 turns each off
    return new LimitsConfig(bytes, limits.get("client_keep_alive_timeout").duration(Duration.ofSeconds(75)),
        limits.get("client_body_timeout").duration(Duration.ofSeconds(60)),
        limits.get("client_send_timeout").duration(Duration.ofSeconds(60)));
  }

  private static UpstreamConfig upstream(ConfigNode upstream) {
    return new UpstreamConfig(
        upstream.get("max_connections_per_backend").integer(16_384, 1),
        upstream.get("keep_alive_timeout").positiveDuration(Duration.ofSeconds(60)),
        upstream.get("max_wait_queue").integer(-1, -1));
  }

  private static String urlPath(ConfigNode node, String defaultValue) {
    String path = node.nonEmptyString(defaultValue).strip();
    if (!path.startsWith("/")) {
      node.problem("must start with /, like " + defaultValue);
      return defaultValue;
    }
    if (path.chars().anyMatch(c -> c <= ' ' || c == '?' || c == '#')) {
      node.problem("must be a plain path without spaces, ? or #");
      return defaultValue;
    }
    return path;
  }

  private static Set<String> explicitSections(JsonNode tree) {
    Set<String> present = new LinkedHashSet<>();
    for (String section : OPTIONAL_SECTIONS) {
      JsonNode node = tree;
      for (String key : section.split("\\.")) {
        node = node != null && node.isObject() ? node.get(key) : null;
      }
      if (node != null) {
        present.add(section);
      }
    }
    return Collections.unmodifiableSet(present);
  }
}
