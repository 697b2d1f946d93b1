package io.llmproxy.routing;

import static java.util.Objects.requireNonNull;

import java.util.List;

/**
 * A model-name glob: {@code *} matches any run of characters, {@code ?} exactly one. Matching is
 * case-sensitive, as model names are in vLLM and TGI.
 */
public final class Glob {
  private final String pattern;
  private final boolean literal;

  private Glob(String pattern) {
    this.pattern = pattern;
    this.literal = pattern.indexOf('*') < 0 && pattern.indexOf('?') < 0;
  }

  public static Glob of(String pattern) {
    return new Glob(requireNonNull(pattern, "pattern"));
  }

  public static List<Glob> all(List<String> patterns) {
    return patterns.stream().map(Glob::of).toList();
  }

  /** True when any of {@code globs} matches {@code name}. */
  public static boolean anyMatches(List<Glob> globs, String name) {
    for (Glob g : globs) {
      if (g.matches(name)) {
        return true;
      }
    }
    return false;
  }

  /** True when the pattern has no wildcard, so it names exactly one model. */
  public boolean isLiteral() {
    return literal;
  }

  public String pattern() {
    return pattern;
  }

  public boolean matches(String s) {
    if (literal) {
      return pattern.equals(s);
    }
    // Iterative wildcard match with backtracking to the last '*': linear in practice.
    int p = 0;
    int i = 0;
    int star = -1;
    int mark = 0;
    while (i < s.length()) {
      if (p < pattern.length() && (pattern.charAt(p) == '?' || pattern.charAt(p) == s.charAt(i))) {
        p++;
        i++;
      } else if (p < pattern.length() && pattern.charAt(p) == '*') {
        star = p++;
        mark = i;
      } else if (star >= 0) {
        p = star + 1;
        i = ++mark;
      } else {
        return false;
      }
    }
    while (p < pattern.length() && pattern.charAt(p) == '*') {
      p++;
    }
    return p == pattern.length();
  }

  @Override
  public String toString() {
    return pattern;
  }
}
