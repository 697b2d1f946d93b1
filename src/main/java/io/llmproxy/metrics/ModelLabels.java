package io.llmproxy.metrics;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Keeps the {@code model} label bounded: the first {@code limit} distinct names admitted are used as
 * they are, any other becomes {@code "other"}. Clients choose model names, and a backend without
 * {@code models} globs takes any of them, so only a name a backend answered with a 2xx is admitted
 * ({@link #admit}), and the names the config lists: junk names, which such a backend refuses, cannot
 * use up the set.
 */
final class ModelLabels {
  static final String OTHER = "other";
  static final String NONE = "none";

  private final int limit;
  private final Set<String> seen = ConcurrentHashMap.newKeySet();

  ModelLabels(int limit) {
    this.limit = limit;
  }

  /** The label of {@code model}: itself once admitted, else {@code other}. */
  String label(String model) {
    if (model == null || model.isEmpty()) {
      return NONE;
    }
    return seen.contains(model) ? model : OTHER;
  }

  /** Gives {@code model} a label of its own while there is room; returns its label. */
  String admit(String model) {
    if (model != null && !model.isEmpty() && !seen.contains(model) && seen.size() < limit && model.length() <= 200) {
      seen.add(model);
    }
    return label(model);
  }
}
