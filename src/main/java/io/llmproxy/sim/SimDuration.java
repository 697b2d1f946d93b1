package io.llmproxy.sim;

import java.time.Duration;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parses the simulator's command-line durations: a whole number with {@code ms}, {@code s} or
 * {@code m}, or a bare number of milliseconds ({@code 200ms}, {@code 2s}, {@code 1m}, {@code 150}).
 */
public final class SimDuration {

  private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m)?");

  private SimDuration() {}

  /** The duration, or an {@link IllegalArgumentException} naming the text. */
  public static Duration parse(String text) {
    Matcher m = DURATION.matcher(text.trim().toLowerCase(Locale.ROOT));
    if (!m.matches()) {
      throw new IllegalArgumentException(
          "not a duration: '" + text + "' (expected e.g. 200ms, 2s, 1m or a number of ms)");
    }
    long amount;
    try {
      amount = Long.parseLong(m.group(1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("duration out of range: '" + text + "'", e);
    }
    String unit = m.group(2) == null ? "ms" : m.group(2);
    return switch (unit) {
      case "s" -> Duration.ofSeconds(amount);
      case "m" -> Duration.ofMinutes(amount);
      default -> Duration.ofMillis(amount);
    };
  }
}
