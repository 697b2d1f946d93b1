package io.llmproxy.api;

/**
 * Text a client chose (a model name), as the gateway echoes it in an error message or a log line:
 * its first {@link #MAX_CHARS} characters and {@code ...} when it is longer. A request line is
 * bounded, but a body may carry a name of megabytes, which would otherwise come back whole in the
 * error and twice in the access-log line.
 */
public final class ClientText {
  /** The most characters of a client's text echoed. */
  public static final int MAX_CHARS = 256;

  private ClientText() {}

  /** {@code text} as echoed; null stays null. */
  public static String clip(String text) {
    if (text == null || text.length() <= MAX_CHARS) {
      return text;
    }
    int end = Character.isHighSurrogate(text.charAt(MAX_CHARS - 1)) ? MAX_CHARS - 1 : MAX_CHARS; // never half a pair
    return text.substring(0, end) + "...";
  }
}
