package io.llmproxy.config;

/** {@code admin}. An empty {@code token} turns the admin API off. */
public record AdminConfig(String token) {
  public boolean enabled() {
    return token != null && !token.isEmpty();
  }
}
