package io.llmproxy.routing;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * The backends one request tries, in order (SPEC §6.1, §6.3). Each call to {@link #next()} picks a
 * backend and takes one of its in-flight slots; the caller releases it with {@link Backend#release()}.
 * Preference: a healthy backend not tried yet (following the {@code routing.fallback} chain of the
 * first one, when a rule applies); then a healthy one again; and when no candidate is healthy at
 * all, every candidate anyway (panic mode), untried first. Used by one event loop at a time.
 */
public final class RoutePlan {
  private final Router router;
  private final String clientModel;
  private final CandidateGroup group;
  private final String affinityKey;
  private final List<Backend> tried = new ArrayList<>(2);
  private List<Backend> fallbackOrder;
  private boolean panicCounted;

  RoutePlan(Router router, String clientModel, CandidateGroup group, String affinityKey) {
    this.router = router;
    this.clientModel = clientModel;
    this.group = group;
    this.affinityKey = affinityKey;
  }

  public CandidateGroup group() {
    return group;
  }

  /** Backends picked so far, in order. */
  public List<Backend> tried() {
    return tried;
  }

  /** True when some untried candidate remains (healthy or not). */
  public boolean hasUntried() {
    for (Backend b : group.backends()) {
      if (!tried.contains(b)) {
        return true;
      }
    }
    return false;
  }

  /** The next backend, with an in-flight slot taken; null when every candidate is at max_concurrent. */
  public Backend next() {
    Backend b = pick();
    if (b != null) {
      if (tried.isEmpty()) {
        fallbackOrder = router.fallbackAfter(b, clientModel);
      }
      tried.add(b);
    }
    return b;
  }

  private Backend pick() {
    Predicate<Backend> untriedHealthy = b -> b.routable() && !tried.contains(b) && b.hasCapacity();
    if (fallbackOrder != null) {
      for (Backend b : fallbackOrder) {
        if (group.backends().contains(b) && untriedHealthy.test(b) && b.tryAcquire()) {
          return b;
        }
      }
    }
    Backend b = choose(untriedHealthy);
    if (b != null) {
      return b;
    }
    b = choose(x -> x.routable() && x.hasCapacity());
    if (b != null) {
      return b;
    }
    if (anyRoutable()) {
      return null; // healthy backends exist but all are at max_concurrent
    }
    if (!panicCounted) {
      panicCounted = true;
      router.metrics().panicRouted();
    }
    b = choose(x -> !tried.contains(x) && x.hasCapacity());
    return b != null ? b : choose(Backend::hasCapacity);
  }

  private boolean anyRoutable() {
    for (Backend b : group.backends()) {
      if (b.routable()) {
        return true;
      }
    }
    return false;
  }

  /** Picks by affinity or strategy, and takes a slot; retries if another request took the last one. */
  private Backend choose(Predicate<Backend> eligible) {
    for (int i = 0; i < 8; i++) {
      Backend b = affinityKey != null
          ? Rendezvous.pick(group.backends(), eligible, affinityKey)
          : router.balancer().pick(group, eligible);
      if (b == null) {
        return null;
      }
      if (b.tryAcquire()) {
        return b;
      }
    }
    return null;
  }
}
