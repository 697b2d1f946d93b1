package io.llmproxy.routing;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The backends that serve one model, in config order, with the balancing state kept for that set
 * (the round-robin cursor and the smooth weighted round-robin's current weights).
 */
public final class CandidateGroup {
  private final List<Backend> backends;
  final AtomicLong cursor = new AtomicLong();
  /** Smooth WRR current weights, by position; guarded by {@code this}. */
  final double[] currentWeights;

  CandidateGroup(List<Backend> backends) {
    this.backends = List.copyOf(backends);
    this.currentWeights = new double[backends.size()];
  }

  public List<Backend> backends() {
    return backends;
  }

  public boolean isEmpty() {
    return backends.isEmpty();
  }

  public int size() {
    return backends.size();
  }
}
