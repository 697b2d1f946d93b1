package io.llmproxy.config;

import static java.util.Objects.requireNonNull;

import java.util.List;

/**
 * A config that cannot be used. {@link #problems()} lists every problem found, each as
 * {@code path: message} (for example {@code backends[2].url: must be an http:// or https:// URL}); the
 * message joins them one per line. No problem ever contains the value of a secret (an API key, a
 * token, a password).
 */
public final class ConfigException extends Exception {

  private final List<String> problems;

  /** @param problems at least one, in the order they should be shown */
  public ConfigException(List<String> problems) {
    this(problems, null);
  }

  /** @param cause for example the {@link java.io.IOException} of a file that could not be read */
  public ConfigException(List<String> problems, Throwable cause) {
    super(String.join("\n", requireNonNull(problems, "problems")), cause);
    if (problems.isEmpty()) {
      throw new IllegalArgumentException("a ConfigException needs at least one problem");
    }
    this.problems = List.copyOf(problems);
  }

  /** Every problem, each {@code path: message}; never empty. */
  public List<String> problems() {
    return problems;
  }
}
