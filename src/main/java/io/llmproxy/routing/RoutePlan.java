package io.llmproxy.routing;

import io.llmproxy.health.PassiveHealth.Admission;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * The backends one request tries, in order (SPEC §6.1, §6.3). Each call to {@link #next()} picks a
 * backend and takes one of its in-flight slots; the caller releases it with {@link Backend#release()}.
 * Preference: a routable backend not tried yet (following the {@code routing.fallback} chain of the
 * first one, when a rule applies); then a routable one again; and when no candidate is routable at
 * all, every candidate anyway (panic mode, as in Envoy), untried first, the one whose cooldown ends
 * soonest first. It never gives up while a candidate has room. Used by one event loop at a time.
 */
public final class RoutePlan {
  private final Router router;
  private final String clientModel;
  private final CandidateGroup group;
  private final String affinityKey;
  /** The model sent to the backends and whether the request streams: what latency statistics are kept under. */
  private final String model;
  private final boolean stream;
  private final List<Backend> tried = new ArrayList<>(2);
  private List<Backend> fallbackOrder;
  private boolean panicCounted;

  /** A backend picked for one attempt; a {@code canary} is a half-open probe whose outcome decides its state. */
  public record Pick(Backend backend, boolean canary) {}

  RoutePlan(Router router, String clientModel, String model, boolean stream, CandidateGroup group,
      String affinityKey) {
    this.router = router;
    this.clientModel = clientModel;
    this.model = model;
    this.stream = stream;
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

  /**
   * True when the next pick can go to a candidate not tried yet: an untried one that is routable and
   * has room, or, when no candidate is routable (panic mode), any untried one with room. Unlike
   * {@link #hasUntried()}, a candidate that is down, cooling or at max_concurrent does not count, as
   * {@link #next()} would pass it over for one already tried.
   */
  public boolean canTryUntried() {
    boolean panic = !anyRoutable();
    for (Backend b : group.backends()) {
      if (!tried.contains(b) && b.hasCapacity() && (panic || b.routable())) {
        return true;
      }
    }
    return false;
  }

  /** How many candidates are routable now (not down, not cooling), whether or not they have room. */
  public int routableCount() {
    int n = 0;
    for (Backend b : group.backends()) {
      if (b.routable()) {
        n++;
      }
    }
    return n;
  }

  /** The next backend, with an in-flight slot taken; null when every candidate is at max_concurrent. */
  public Pick next() {
    return record(pick(null, true));
  }

  /**
   * The next backend for a parallel attempt (a race or a hedge): never one already tried, and among
   * the routable ones those {@code prefer} accepts first; null when no untried candidate has room.
   */
  public Pick next(Predicate<Backend> prefer) {
    return record(pick(prefer, false));
  }

  /**
   * The pick {@link #next(Predicate)} just returned was not used (the hedge budget refused it): its
   * slot, and its canary place if it had one, go back, and its backend counts as untried again.
   */
  public void giveBack(Pick p) {
    Backend b = p.backend();
    if (tried.isEmpty() || tried.get(tried.size() - 1) != b) {
      throw new IllegalStateException("only the latest pick can be given back");
    }
    tried.remove(tried.size() - 1);
    b.release();
    b.abandoned(p.canary());
  }

  private Pick record(Pick p) {
    if (p != null) {
      if (tried.isEmpty()) {
        fallbackOrder = router.fallbackAfter(p.backend(), clientModel);
      }
      tried.add(p.backend());
    }
    return p;
  }

  private Pick pick(Predicate<Backend> prefer, boolean allowTried) {
    Predicate<Backend> untriedRoutable = b -> b.routable() && !tried.contains(b) && b.hasCapacity();
    if (prefer != null) {
      Pick p = choose(untriedRoutable.and(prefer));
      if (p != null) {
        return p;
      }
    }
    if (fallbackOrder != null) {
      for (Backend b : fallbackOrder) {
        if (group.backends().contains(b) && untriedRoutable.test(b)) {
          Pick p = acquire(b, false);
          if (p != null) {
            return p;
          }
        }
      }
    }
    Pick p = choose(untriedRoutable);
    if (p != null) {
      return p;
    }
    if (allowTried) {
      p = choose(x -> x.routable() && x.hasCapacity());
      if (p != null) {
        return p;
      }
    }
    if (anyRoutable()) {
      return null; // routable backends exist but all are tried or at max_concurrent
    }
    if (!panicCounted) {
      panicCounted = true;
      router.metrics().panicRouted();
    }
    p = panic(false);
    return p != null || !allowTried ? p : panic(true);
  }

  /** Panic mode: the candidate whose cooldown ends soonest (untried ones first unless {@code again}). */
  private Pick panic(boolean again) {
    List<Backend> order = new ArrayList<>(group.backends());
    order.sort(java.util.Comparator.comparingLong(Backend::cooldownRemainingNanos));
    for (Backend b : order) {
      if ((again || !tried.contains(b)) && b.hasCapacity()) {
        Pick pick = acquire(b, true);
        if (pick != null) {
          return pick;
        }
      }
    }
    return null;
  }

  private static Pick acquire(Backend b, boolean panic) {
    Admission a = b.tryAcquire(panic);
    return a == Admission.REFUSED ? null : new Pick(b, a == Admission.CANARY);
  }

  private boolean anyRoutable() {
    for (Backend b : group.backends()) {
      if (b.routable()) {
        return true;
      }
    }
    return false;
  }

  /** Picks by affinity or strategy, and takes a slot; tries again if another request took the last one. */
  private Pick choose(Predicate<Backend> eligible) {
    for (int i = 0; i < 8; i++) {
      Backend b = affinityKey != null
          ? Rendezvous.pick(group.backends(), eligible, affinityKey)
          : router.balancer().pick(group, eligible, model, stream);
      if (b == null) {
        return null;
      }
      Pick p = acquire(b, false);
      if (p != null) {
        return p;
      }
    }
    return null;
  }
}
