package io.llmproxy.server;

import io.llmproxy.routing.Backend;
import java.util.List;
import java.util.function.Supplier;

/**
 * {@code /ready} (SPEC §4): ready while not draining and at least one backend is up. With active
 * health checks a backend counts once a check has passed; without them, every backend is up.
 */
final class Readiness {
  /** The backends of the config now in force. */
  private final Supplier<List<Backend>> backends;
  private volatile boolean draining;

  Readiness(Supplier<List<Backend>> backends) {
    this.backends = backends;
  }

  void draining() {
    draining = true;
  }

  boolean isDraining() {
    return draining;
  }

  int backendsUp() {
    int n = 0;
    for (Backend b : backends.get()) {
      if (b.health() == Backend.Health.UP) {
        n++;
      }
    }
    return n;
  }

  boolean ready() {
    return !draining && backendsUp() > 0;
  }
}
