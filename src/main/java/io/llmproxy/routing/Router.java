package io.llmproxy.routing;

import static java.util.Objects.requireNonNull;

import io.llmproxy.config.GatewayConfig;
import io.llmproxy.config.RoutingConfig.FallbackRule;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.stats.LatencyStats;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Maps model names, finds the candidate backends of a model (SPEC §6.1) and starts a
 * {@link RoutePlan} for each request. Thread-safe and shared by all event loops. A config reload
 * builds a new one; requests started before it keep routing (retries, fallback) by the old one.
 */
public final class Router {
  private static final int MAX_CACHED_MODELS = 10_000;

  private final GatewayConfig config;
  private final List<Backend> backends;
  private final Map<String, Backend> byName = new HashMap<>();
  private final Map<String, String> mapping;
  private final LoadBalancer balancer;
  private final List<Chain> chains;
  private final GatewayMetrics metrics;
  private final CandidateGroup all;
  private final Map<String, CandidateGroup> byModel = new ConcurrentHashMap<>();
  private final Map<BitSet, CandidateGroup> bySet = new ConcurrentHashMap<>();

  /** A fallback rule with its backends resolved. */
  record Chain(Backend primary, List<Backend> fallback, List<Glob> models) {}

  public Router(GatewayConfig config, List<Backend> backends, GatewayMetrics metrics, LatencyStats stats) {
    this.config = requireNonNull(config, "config");
    this.backends = List.copyOf(backends);
    this.backends.forEach(b -> byName.put(b.name(), b));
    this.mapping = config.routing().modelMapping();
    this.balancer = LoadBalancer.of(config.strategy(), stats);
    this.metrics = requireNonNull(metrics, "metrics");
    this.all = new CandidateGroup(this.backends);
    List<Chain> cs = new ArrayList<>();
    for (FallbackRule r : config.routing().fallback()) {
      cs.add(new Chain(named(r.primary()), r.fallback().stream().map(this::named).toList(), Glob.all(r.models())));
    }
    this.chains = List.copyOf(cs);
  }

  private Backend named(String name) {
    Backend b = byName.get(name);
    if (b == null) {
      throw new IllegalArgumentException("no backend named " + name);
    }
    return b;
  }

  /** The config it was built from: the one requests that start now follow. */
  public GatewayConfig config() {
    return config;
  }

  /** The backend with this name, or null. */
  public Backend backend(String name) {
    return byName.get(name);
  }

  public List<Backend> backends() {
    return backends;
  }

  /** The name the backend should receive: {@code model_mapping}'s target, or the name itself. */
  public String map(String clientModel) {
    return mapping.getOrDefault(clientModel, clientModel);
  }

  public Map<String, String> mapping() {
    return mapping;
  }

  /** Every backend, for requests that name no model. */
  public CandidateGroup all() {
    return all;
  }

  /** The backends whose {@code models} globs match the mapped model name; may be empty. */
  public CandidateGroup candidates(String mappedModel) {
    CandidateGroup g = byModel.get(mappedModel);
    if (g != null) {
      return g;
    }
    BitSet set = new BitSet(backends.size());
    for (Backend b : backends) {
      if (b.serves(mappedModel)) {
        set.set(b.index());
      }
    }
    // Models with the same candidates share one group, so balancing state is per backend set.
    g = bySet.computeIfAbsent(set, s -> new CandidateGroup(s.stream().mapToObj(backends::get).toList()));
    if (byModel.size() < MAX_CACHED_MODELS) {
      byModel.put(mappedModel, g);
    }
    return g;
  }

  /**
   * Starts the routing of one request.
   *
   * @param clientModel the model as the client named it, null when the request names none
   * @param sentModel   the model as the backends get it (after mapping), null when none
   * @param stream      whether the request streams (latency statistics differ)
   * @param affinityKey the session-affinity header's value, or null
   */
  public RoutePlan plan(String clientModel, String sentModel, boolean stream, CandidateGroup group,
      String affinityKey) {
    return new RoutePlan(this, clientModel, sentModel, stream, group, affinityKey);
  }

  LoadBalancer balancer() {
    return balancer;
  }

  GatewayMetrics metrics() {
    return metrics;
  }

  /** The fallback order after {@code first}, or null when no rule applies. */
  List<Backend> fallbackAfter(Backend first, String clientModel) {
    for (Chain c : chains) {
      if (c.primary() == first && (c.models().isEmpty() || (clientModel != null && Glob.anyMatches(c.models(), clientModel)))) {
        return c.fallback();
      }
    }
    return null;
  }

  /** Model names for {@code /v1/models}: mapping keys and literal {@code models} entries, in config order. */
  public Set<String> configuredModelNames() {
    Set<String> names = new LinkedHashSet<>(mapping.keySet());
    for (Backend b : backends) {
      for (Glob g : b.models()) {
        if (g.isLiteral()) {
          names.add(g.pattern());
        }
      }
    }
    return names;
  }
}
