package io.llmproxy.config;

import io.llmproxy.config.GatewayConfig.ListenAddress;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Parsers for the config's value syntaxes. Each throws {@link IllegalArgumentException} with a message
 * meant for the user, written to follow {@code path: }.
 */
public final class ValueParsers {

  private static final BigDecimal MAX_NANOS = BigDecimal.valueOf(Long.MAX_VALUE);
  private static final Pattern BARE_NUMBER = Pattern.compile("[0-9]*\\.?[0-9]+|[0-9]+\\.");
  private static final Map<String, Long> DURATION_UNITS = Map.of(
      "ns", 1L,
      "us", 1_000L,
      "\u00b5s", 1_000L, // micro sign
      "\u03bcs", 1_000L, // Greek small mu
      "ms", 1_000_000L,
      "s", 1_000_000_000L,
      "m", 60_000_000_000L,
      "h", 3_600_000_000_000L);
  private static final String DURATION_UNIT_LIST = "ns, us, ms, s, m, h";

  private static final Pattern SIZE = Pattern.compile("([0-9]+(?:\\.[0-9]+)?)\\s*([A-Za-z]*)");
  private static final Map<String, Long> SIZE_UNITS = Map.of(
      "", 1L,
      "b", 1L,
      "kb", 1_000L,
      "mb", 1_000_000L,
      "gb", 1_000_000_000L,
      "tb", 1_000_000_000_000L,
      "kib", 1L << 10,
      "mib", 1L << 20,
      "gib", 1L << 30,
      "tib", 1L << 40);

  private static final Pattern PERCENTILE = Pattern.compile("[pP]([0-9]+(?:\\.[0-9]+)?)");
  private static final Pattern HOST_NAME = Pattern.compile(
      "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\\.?");
  private static final Pattern INTEGER = Pattern.compile("[+-]?[0-9]+(_[0-9]+)*");

  private ValueParsers() {}

  /**
   * A Go-style duration: {@code 500ms}, {@code 1.5s}, {@code 1m30s}; units ns, us (or µs), ms, s, m, h.
   * {@code 0} alone is zero; any other number needs a unit. Negative durations are refused.
   */
  static Duration duration(String text) {
    String s = text.strip();
    if (s.isEmpty()) {
      throw new IllegalArgumentException("empty; write a duration such as 500ms, 2s or 1m30s");
    }
    if (s.equals("0") || s.equals("+0")) {
      return Duration.ZERO;
    }
    if (s.startsWith("-")) {
      throw new IllegalArgumentException("'" + s + "' is negative; a duration must be 0 or more");
    }
    if (s.startsWith("+")) {
      s = s.substring(1);
    }
    if (BARE_NUMBER.matcher(s).matches()) {
      throw new IllegalArgumentException("'" + s + "' has no unit; add one, for example " + s + "s or "
          + s + "ms (units: " + DURATION_UNIT_LIST + ")");
    }
    BigDecimal nanos = BigDecimal.ZERO;
    int i = 0;
    while (i < s.length()) {
      int numberStart = i;
      while (i < s.length() && (isDigit(s.charAt(i)) || s.charAt(i) == '.')) {
        i++;
      }
      String number = s.substring(numberStart, i);
      int unitStart = i;
      while (i < s.length() && !isDigit(s.charAt(i)) && s.charAt(i) != '.') {
        i++;
      }
      String unit = s.substring(unitStart, i);
      if (number.isEmpty() || !BARE_NUMBER.matcher(number).matches()) {
        throw new IllegalArgumentException("'" + s + "' is not a duration; write for example 500ms, 2s, "
            + "1.5s or 1m30s (units: " + DURATION_UNIT_LIST + ")");
      }
      if (unit.isEmpty()) {
        throw new IllegalArgumentException("'" + s + "' ends in a number without a unit (units: "
            + DURATION_UNIT_LIST + ")");
      }
      Long unitNanos = DURATION_UNITS.get(unit);
      if (unitNanos == null) {
        String hint = unit.equals("d") ? "; write days in hours, for example 24h" : "";
        throw new IllegalArgumentException("'" + s + "' has an unknown unit '" + unit + "' (units: "
            + DURATION_UNIT_LIST + ")" + hint);
      }
      nanos = nanos.add(new BigDecimal(number).multiply(BigDecimal.valueOf(unitNanos)));
    }
    if (nanos.compareTo(MAX_NANOS) > 0) {
      throw new IllegalArgumentException("'" + s + "' is too long (at most about 292 years)");
    }
    return Duration.ofNanos(nanos.setScale(0, RoundingMode.DOWN).longValueExact());
  }

  /** The shortest Go-style text of a duration: {@code 500ms}, {@code 1m30s}, {@code 15m}. */
  public static String format(Duration d) {
    if (d.isZero()) {
      return "0s";
    }
    StringBuilder out = new StringBuilder();
    long hours = d.toHours();
    int minutes = d.toMinutesPart();
    int seconds = d.toSecondsPart();
    int nanos = d.toNanosPart();
    if (hours > 0) {
      out.append(hours).append('h');
    }
    if (minutes > 0) {
      out.append(minutes).append('m');
    }
    if (nanos == 0) {
      if (seconds > 0) {
        out.append(seconds).append('s');
      }
    } else if (seconds > 0 || nanos % 1_000_000 != 0) {
      out.append(BigDecimal.valueOf(seconds).add(BigDecimal.valueOf(nanos, 9)).stripTrailingZeros()
          .toPlainString()).append('s');
    } else {
      out.append(nanos / 1_000_000).append("ms");
    }
    return out.toString();
  }

  /**
   * A byte size: {@code 32MiB}, {@code 512KiB}, {@code 1GiB} (binary), {@code 10MB}, {@code 1GB}
   * (decimal), {@code 100B} or a bare integer (bytes). Units ignore case.
   */
  static long byteSize(String text) {
    String s = text.strip();
    Matcher m = SIZE.matcher(s);
    Long unitBytes = m.matches() ? SIZE_UNITS.get(m.group(2).toLowerCase(Locale.ROOT)) : null;
    if (unitBytes == null) {
      throw new IllegalArgumentException("'" + s + "' is not a size; write for example 32MiB, 512KiB, "
          + "10MB or 1048576 (units: B, KB, MB, GB, KiB, MiB, GiB)");
    }
    BigDecimal bytes = new BigDecimal(m.group(1)).multiply(BigDecimal.valueOf(unitBytes));
    if (unitBytes == 1 && bytes.stripTrailingZeros().scale() > 0) {
      throw new IllegalArgumentException("'" + s + "': a number of bytes must be whole");
    }
    if (bytes.compareTo(MAX_NANOS) > 0) {
      throw new IllegalArgumentException("'" + s + "' is too large");
    }
    return bytes.setScale(0, RoundingMode.DOWN).longValueExact();
  }

  /**
   * An integer, with optional {@code _} between digits ({@code 1_000_000}); also a whole number written
   * with a fraction of zero ({@code 10.0}).
   */
  static long integer(String text) {
    String s = text.strip();
    if (INTEGER.matcher(s).matches()) {
      try {
        return Long.parseLong(s.replace("_", ""));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("'" + s + "' is too large");
      }
    }
    try {
      BigDecimal decimal = new BigDecimal(s);
      if (decimal.stripTrailingZeros().scale() <= 0) {
        return decimal.longValueExact();
      }
    } catch (NumberFormatException | ArithmeticException e) {
      // fall through to the message below
    }
    throw new IllegalArgumentException("expected a whole number, got '" + s + "'");
  }

  /** A finite decimal number. */
  static double decimal(String text) {
    String s = text.strip().replace("_", "");
    try {
      double value = Double.parseDouble(s);
      if (Double.isFinite(value) && !s.endsWith("d") && !s.endsWith("D") && !s.endsWith("f")
          && !s.endsWith("F")) {
        return value;
      }
    } catch (NumberFormatException e) {
      // fall through to the message below
    }
    throw new IllegalArgumentException("expected a number, got '" + text.strip() + "'");
  }

  /** {@code true}/{@code false}, and YAML 1.1's {@code yes}/{@code no}/{@code on}/{@code off}; any case. */
  static boolean bool(String text) {
    return switch (text.strip().toLowerCase(Locale.ROOT)) {
      case "true", "yes", "on" -> true;
      case "false", "no", "off" -> false;
      default -> throw new IllegalArgumentException("expected true or false, got '" + text.strip() + "'");
    };
  }

  /**
   * {@code listen}: {@code ":8080"} (every interface), {@code "127.0.0.1:9000"}, {@code "[::1]:8080"},
   * {@code "localhost:8080"} or {@code "8080"}; port 0..65535, 0 picking a free port.
   */
  static ListenAddress listen(String text) {
    String s = text.strip();
    if (!s.isEmpty() && s.chars().allMatch(ValueParsers::isDigit)) {
      return new ListenAddress("0.0.0.0", port(s, s, 0));
    }
    HostPort hostPort = hostPort(s, "\":8080\", \"127.0.0.1:8080\", \"[::1]:8080\" or \"8080\"", 0);
    return new ListenAddress(hostPort.host().isEmpty() ? "0.0.0.0" : hostPort.host(), hostPort.port());
  }

  /** {@code host:port} with a host, as in {@code auth.redis.addr}; port 1..65535. */
  static HostPort address(String text) {
    HostPort hostPort = hostPort(text.strip(), "\"redis:6379\" or \"[::1]:6379\"", 1);
    if (hostPort.host().isEmpty()) {
      throw new IllegalArgumentException("'" + text.strip() + "' has no host; write for example redis:6379");
    }
    return hostPort;
  }

  /** @param host empty when not written, an IPv6 address without brackets */
  record HostPort(String host, int port) {}

  private static HostPort hostPort(String s, String examples, int minPort) {
    String host;
    String port;
    if (s.startsWith("[")) {
      int close = s.indexOf("]:");
      if (close < 0) {
        throw new IllegalArgumentException("'" + s + "' is not host:port; write for example " + examples);
      }
      host = s.substring(1, close);
      port = s.substring(close + 2);
      if (IpLiterals.parseIpv6(host) == null) {
        throw new IllegalArgumentException("'" + host + "' is not an IPv6 address");
      }
    } else {
      int colon = s.lastIndexOf(':');
      if (colon < 0) {
        throw new IllegalArgumentException("'" + s + "' is not host:port; write for example " + examples);
      }
      host = s.substring(0, colon);
      port = s.substring(colon + 1);
      if (host.contains(":")) {
        throw new IllegalArgumentException("'" + s + "': put an IPv6 address in brackets, like [::1]:8080");
      }
      if (!host.isEmpty() && !HOST_NAME.matcher(host).matches()) {
        throw new IllegalArgumentException("'" + host + "' is not a valid host name or address");
      }
    }
    return new HostPort(host.toLowerCase(Locale.ROOT), port(port, s, minPort));
  }

  private static int port(String port, String whole, int minPort) {
    if (port.isEmpty() || port.length() > 5 || !port.chars().allMatch(ValueParsers::isDigit)) {
      throw new IllegalArgumentException("'" + whole + "' has no valid port number");
    }
    int value = Integer.parseInt(port);
    if (value < minPort || value > 65535) {
      throw new IllegalArgumentException("port " + value + " is out of range (" + minPort + "..65535)");
    }
    return value;
  }

  /**
   * {@code p95} gives 95.0 and {@code p99.9} gives 99.9; null when the text does not look like a
   * percentile at all.
   *
   * @throws IllegalArgumentException for a percentile outside (0, 100)
   */
  static Double percentile(String text) {
    Matcher m = PERCENTILE.matcher(text.strip());
    if (!m.matches()) {
      return null;
    }
    double value = Double.parseDouble(m.group(1));
    if (!(value > 0 && value < 100)) {
      throw new IllegalArgumentException("percentile " + text.strip() + " must be above p0 and below p100");
    }
    return value;
  }

  /**
   * An ISO-8601 instant or offset date-time ({@code 2026-12-31T23:59:59Z}, {@code 2026-12-31T23:59:59+08:00}),
   * or a date ({@code 2026-12-31}) meaning the end of that day in UTC.
   */
  public static Instant expiry(String text) {
    String s = text.strip();
    try {
      return OffsetDateTime.parse(s).toInstant();
    } catch (DateTimeException e) {
      // try the next form
    }
    try {
      return Instant.parse(s);
    } catch (DateTimeException e) {
      // try the next form
    }
    try {
      return LocalDate.parse(s).atTime(LocalTime.MAX).toInstant(ZoneOffset.UTC);
    } catch (DateTimeException e) {
      // try the next form
    }
    try {
      LocalDateTime.parse(s);
      throw new IllegalArgumentException("'" + s + "' has no time zone; add one, for example " + s + "Z for UTC");
    } catch (DateTimeException e) {
      throw new IllegalArgumentException("'" + s + "' is not a date-time; write for example "
          + "2026-12-31T23:59:59Z, or 2026-12-31 for the end of that day in UTC");
    }
  }

  /**
   * An absolute http or https URL with a host and without user info. The scheme and host come back in
   * lower case; nothing else changes.
   *
   * @param allowQuery whether a query ({@code ?a=b}) is allowed
   */
  public static URI httpUrl(String text, boolean allowQuery) {
    String s = text.strip();
    URI uri;
    try {
      uri = new URI(s);
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("not a valid URL: " + e.getReason()
          + (e.getIndex() >= 0 ? " at character " + (e.getIndex() + 1) : ""));
    }
    String scheme = uri.getScheme() == null ? null : uri.getScheme().toLowerCase(Locale.ROOT);
    if (!"http".equals(scheme) && !"https".equals(scheme) || uri.isOpaque()) {
      throw new IllegalArgumentException("must be an absolute http:// or https:// URL, like http://gpu-1:8000");
    }
    if (uri.getRawAuthority() == null || uri.getRawAuthority().isEmpty()) {
      throw new IllegalArgumentException("has no host; write for example http://gpu-1:8000");
    }
    if (uri.getRawUserInfo() != null) {
      throw new IllegalArgumentException("must not hold user:password@; send credentials with api_key or "
          + "headers instead");
    }
    if (uri.getHost() == null) {
      throw new IllegalArgumentException("'" + uri.getRawAuthority() + "' is not a valid host[:port] (a host "
          + "name has letters, digits, - and . only)");
    }
    if (uri.getPort() == 0 || uri.getPort() > 65535) {
      throw new IllegalArgumentException("port " + uri.getPort() + " is out of range (1 to 65535)");
    }
    if (uri.getRawQuery() != null && !allowQuery) {
      throw new IllegalArgumentException("must not have a query (?...)");
    }
    if (uri.getRawFragment() != null) {
      throw new IllegalArgumentException("must not have a fragment (#...)");
    }
    String rest = s.substring(s.indexOf("://") + 3 + uri.getRawAuthority().length());
    return URI.create(scheme + "://" + uri.getRawAuthority().toLowerCase(Locale.ROOT) + rest);
  }

  /** The port of an http(s) URL, 80 or 443 when not written. */
  static int portOf(URI url) {
    if (url.getPort() >= 0) {
      return url.getPort();
    }
    return "https".equals(url.getScheme()) ? 443 : 80;
  }

  /** For comparing backend URLs: lower-case scheme and host, explicit port, no trailing slash. */
  static String normalizedUrl(URI url) {
    String path = url.getRawPath() == null ? "" : url.getRawPath();
    while (path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    String query = url.getRawQuery() == null ? "" : "?" + url.getRawQuery();
    return url.getScheme().toLowerCase(Locale.ROOT) + "://" + url.getHost().toLowerCase(Locale.ROOT) + ":"
        + portOf(url) + path + query;
  }

  private static boolean isDigit(int c) {
    return c >= '0' && c <= '9';
  }

  /**
   * The constant of {@code type} that {@code text} names, in any case and with {@code -} or
   * {@code _} ({@code weighted-round-robin}, {@code WEIGHTED_ROUND_ROBIN}); null when none does.
   */
  public static <E extends Enum<E>> E enumConstant(Class<E> type, String text) {
    String normalized = text.strip().toUpperCase(Locale.ROOT).replace('-', '_');
    for (E constant : type.getEnumConstants()) {
      if (constant.name().equals(normalized)) {
        return constant;
      }
    }
    return null;
  }

  /** The values {@code type} accepts, as they are written in the config and the admin API. */
  public static List<String> enumNames(Class<? extends Enum<?>> type) {
    return Arrays.stream(type.getEnumConstants()).map(c -> c.name().toLowerCase(Locale.ROOT)).toList();
  }

  /** Says that {@code text} names none of {@code type}'s constants, with the closest one if any is close. */
  public static String unknownEnumValue(Class<? extends Enum<?>> type, String text) {
    List<String> allowed = enumNames(type);
    String suggestion = Suggestions.closest(text.strip(), allowed);
    return "unknown value '" + text.strip() + "'; expected one of: " + String.join(", ", allowed)
        + (suggestion == null ? "" : " (did you mean '" + suggestion + "'?)");
  }
}
