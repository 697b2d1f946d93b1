package io.llmproxy.routing;

import io.llmproxy.config.Strategy;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Picks one backend of a candidate group (SPEC §6.2). Implementations are thread-safe. */
public interface LoadBalancer {

  /**
   * @param group    the model's candidates
   * @param eligible which of them may be picked now
   * @return the pick, or null when none is eligible
   */
  Backend pick(CandidateGroup group, Predicate<Backend> eligible);

  static LoadBalancer of(Strategy strategy) {
    return switch (strategy) {
      case ROUND_ROBIN -> new RoundRobin();
      case WEIGHTED_ROUND_ROBIN -> new SmoothWeightedRoundRobin();
      case LEAST_CONNECTIONS -> new LeastConnections();
      case RANDOM -> new WeightedRandom();
      case LATENCY_BASED -> {
        Logger log = LoggerFactory.getLogger(LoadBalancer.class);
        log.warn("load_balance_strategy latency_based has no effect yet; using weighted_round_robin");
        yield new SmoothWeightedRoundRobin();
      }
    };
  }

  /** Each eligible backend in turn, ignoring weights. */
  final class RoundRobin implements LoadBalancer {
    @Override
    public Backend pick(CandidateGroup group, Predicate<Backend> eligible) {
      List<Backend> bs = group.backends();
      int n = bs.size();
      long start = group.cursor.getAndIncrement();
      for (int i = 0; i < n; i++) {
        Backend b = bs.get((int) Math.floorMod(start + i, (long) n));
        if (eligible.test(b)) {
          return b;
        }
      }
      return null;
    }
  }

  /**
   * nginx's smooth weighted round-robin: every pick adds each eligible backend's weight to its
   * current weight, takes the largest, and subtracts the total from it. Picks interleave instead of
   * bursting (5,1,1 gives a a b a c a a).
   */
  final class SmoothWeightedRoundRobin implements LoadBalancer {
    @Override
    public Backend pick(CandidateGroup group, Predicate<Backend> eligible) {
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
    public Backend pick(CandidateGroup group, Predicate<Backend> eligible) {
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
    public Backend pick(CandidateGroup group, Predicate<Backend> eligible) {
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
}
