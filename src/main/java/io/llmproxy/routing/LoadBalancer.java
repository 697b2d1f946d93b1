package io.llmproxy.routing;

import io.llmproxy.config.Strategy;
import io.llmproxy.stats.LatencyStats;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Predicate;

/** Picks one backend of a candidate group (SPEC §6.2). Implementations are thread-safe. */
public interface LoadBalancer {

  /**
   * @param group    the model's candidates
   * @param eligible which of them may be picked now
   * @param model    the model the backends are sent (latency statistics are kept per model)
   * @param stream   whether the request streams (TTFT statistics) or not (latency)
   * @return the pick, or null when none is eligible
   */
  Backend pick(CandidateGroup group, Predicate<Backend> eligible, String model, boolean stream);

  static LoadBalancer of(Strategy strategy, LatencyStats stats) {
    return switch (strategy) {
      case ROUND_ROBIN -> new RoundRobin();
      case WEIGHTED_ROUND_ROBIN -> new SmoothWeightedRoundRobin();
      case LEAST_CONNECTIONS -> new LeastConnections();
      case RANDOM -> new WeightedRandom();
      case LATENCY_BASED -> new PeakEwmaP2C(stats);
    };
  }

  /**
   * Each eligible backend in turn, ignoring weights. The cursor counts over the eligible backends, not
   * over all of them: stepping past an ineligible one to its successor would give the successor that
   * backend's turns too (A, B, C with B down: A 1/3, C 2/3). A pick that finds none takes no turn.
   */
  final class RoundRobin implements LoadBalancer {
    @Override
    public Backend pick(CandidateGroup group, Predicate<Backend> eligible, String model, boolean stream) {
      List<Backend> bs = group.backends();
      Backend[] ok = new Backend[bs.size()];
      int n = 0;
      for (Backend b : bs) {
        if (eligible.test(b)) {
          ok[n++] = b;
        }
      }
      if (n == 0) {
        return null;
      }
      return ok[(int) Math.floorMod(group.cursor.getAndIncrement(), (long) n)];
    }
  }

  /**
   * nginx's smooth weighted round-robin: every pick adds each eligible backend's weight to its
   * current weight, takes the largest, and subtracts the total from it. Picks interleave instead of
   * bursting (5,1,1 gives a a b a c a a).
   */
  final class SmoothWeightedRoundRobin implements LoadBalancer {
    @Override
    public Backend pick(CandidateGroup group, Predicate<Backend> eligible, String model, boolean stream) {
      List<Backend> bs = group.backends();
      synchronized (group) {
        double[] current = group.currentWeights;
        double total = 0;
        int best = -1;
        for (int i = 0; i < bs.size(); i++) {
          Backend b = bs.get(i);
          if (!eligible.test(b)) {
            continue;
          }
          double w = b.effectiveWeight();
          current[i] += w;
          total += w;
          if (best < 0 || current[i] > current[best]) {
            best = i;
          }
        }
        if (best < 0) {
          return null;
        }
        current[best] -= total;
        return bs.get(best);
      }
    }
  }

  /** Fewest in-flight requests per unit of (effective) weight; ties broken at random. */
  final class LeastConnections implements LoadBalancer {
    @Override
    public Backend pick(CandidateGroup group, Predicate<Backend> eligible, String model, boolean stream) {
      Backend best = null;
      double bestLoad = Double.MAX_VALUE;
      int ties = 0;
      ThreadLocalRandom rnd = ThreadLocalRandom.current();
      for (Backend b : group.backends()) {
        if (!eligible.test(b)) {
          continue;
        }
        double load = b.inflight() / b.effectiveWeight();
        if (load < bestLoad) {
          best = b;
          bestLoad = load;
          ties = 1;
        } else if (load == bestLoad && rnd.nextInt(++ties) == 0) {
          best = b; // reservoir sampling over the tied backends
        }
      }
      return best;
    }
  }

  /** Random, in proportion to weight. */
  final class WeightedRandom implements LoadBalancer {
    @Override
    public Backend pick(CandidateGroup group, Predicate<Backend> eligible, String model, boolean stream) {
      double total = 0;
      for (Backend b : group.backends()) {
        if (eligible.test(b)) {
          total += b.effectiveWeight();
        }
      }
      if (total <= 0) {
        return null;
      }
      double r = ThreadLocalRandom.current().nextDouble(total);
      Backend last = null;
      for (Backend b : group.backends()) {
        if (eligible.test(b)) {
          last = b;
          r -= b.effectiveWeight();
          if (r < 0) {
            return b;
          }
        }
      }
      return last; // eligibility changed between the two passes
    }
  }

  /**
   * {@code latency_based} (SPEC §6.2): power of two choices over peak EWMA. Two eligible candidates
   * are drawn at random, with probability in proportion to their (effective) weights, and the one
   * with the lower cost wins: its peak-EWMA TTFT (latency when not streaming) times its requests in
   * flight plus one, divided by its weight. A candidate with no sample yet costs nothing, so it is
   * tried; two draws rather than the minimum keep the traffic from herding onto the one fastest
   * backend.
   */
  final class PeakEwmaP2C implements LoadBalancer {
    private final LatencyStats stats;
    private final WeightedRandom draw = new WeightedRandom();

    PeakEwmaP2C(LatencyStats stats) {
      this.stats = java.util.Objects.requireNonNull(stats, "stats");
    }

    @Override
    public Backend pick(CandidateGroup group, Predicate<Backend> eligible, String model, boolean stream) {
      Backend a = draw.pick(group, eligible, model, stream);
      if (a == null) {
        return null;
      }
      Backend b = draw.pick(group, eligible.and(x -> x != a), model, stream);
      if (b == null) {
        return a;
      }
      return cost(b, model, stream) < cost(a, model, stream) ? b : a;
    }

    double cost(Backend b, String model, boolean stream) {
      LatencyStats.Kind kind = stream ? LatencyStats.Kind.TTFT : LatencyStats.Kind.LATENCY;
      double ewma = stats.entry(b.name(), model, kind).ewma().get(stats.now());
      return ewma * (b.inflight() + 1) / b.effectiveWeight();
    }
  }
}
