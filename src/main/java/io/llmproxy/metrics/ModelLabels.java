package io.llmproxy.metrics;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Keeps the {@code model} label bounded: the first {@code limit} distinct names are used as they
 * are, later ones become {@code "other"}. Clients choose model names, and a backend without
 * {@code models} globs serves any of them, so the label would otherwise be unbounded.
 */
final class ModelLabels {
  static final String OTHER = "other";
  static final String NONE = "none";

  private final int limit;
  private final Set<String> seen = ConcurrentHashMap.newKeySet();

  ModelLabels(int limit) {
    this.limit = limit;
  }

  String label(String model) {
    return label(model, true);
  }

  /**
   * @param admit whether a name not seen yet may take a slot: only names that were routed to a
   *              backend do, so clients sending junk names cannot use up the label set
   */
  String label(String model, boolean admit) {
    if (model == null || model.isEmpty()) {
      return NONE;
    }
    if (seen.contains(model)) {
      return model;
    }
    if (!admit || seen.size() >= limit || model.length() > 200) {
      return OTHER;
    }
    seen.add(model);
    return model;
  }
}
