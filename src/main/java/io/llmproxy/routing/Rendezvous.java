package io.llmproxy.routing;

import java.util.List;
import java.util.function.Predicate;

/**
 * Weighted rendezvous (highest-random-weight) hashing for session affinity: a key always lands on
 * the same backend while that backend stays eligible, and only the keys of a backend that leaves
 * move. Score = weight / -ln(u), with u a uniform hash of (key, backend) in (0, 1).
 */
final class Rendezvous {
  private Rendezvous() {}

  static long seed(String backendName) {
    return mix(hash(backendName) ^ 0x9E3779B97F4A7C15L);
  }

  static Backend pick(List<Backend> backends, Predicate<Backend> eligible, String key) {
    long k = hash(key);
    Backend best = null;
    double bestScore = Double.NEGATIVE_INFINITY;
    for (Backend b : backends) {
      if (!eligible.test(b)) {
        continue;
      }
      long h = mix(k ^ b.seed());
      double u = ((h >>> 11) + 1) * 0x1.0p-53; // (0, 1]
      double score = u >= 1.0 ? Double.POSITIVE_INFINITY : b.weight() / -Math.log(u);
      if (score > bestScore) {
        bestScore = score;
        best = b;
      }
    }
    return best;
  }

  /** 64-bit FNV-1a over the UTF-16 chars. */
  static long hash(String s) {
    long h = 0xcbf29ce484222325L;
    for (int i = 0; i < s.length(); i++) {
      h ^= s.charAt(i);
      h *= 0x100000001b3L;
    }
    return h;
  }

  /** SplitMix64's finalizer. */
  static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }
}
