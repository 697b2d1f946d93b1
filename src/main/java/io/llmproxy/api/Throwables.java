package io.llmproxy.api;

/** What the gateway says about an exception. */
public final class Throwables {
  private Throwables() {}

  /** The message of {@code t}'s innermost cause (its class name if it has none): what went wrong underneath. */
  public static String rootMessage(Throwable t) {
    Throwable c = t;
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
    }
    return c.getMessage() == null ? c.toString() : c.getMessage();
  }
}
