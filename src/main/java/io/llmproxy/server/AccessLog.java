package io.llmproxy.server;

import java.time.Instant;

/**
 * One line per request (SPEC §8) on standard output, formatted and written in batches by an
 * {@link AccessLogWriter} thread so that logging costs an event loop only a queue insert. JSON by
 * default; {@code key=value} pairs with {@code logging.format: text}. Never contains a client key: the
 * key's name and user id stand for it.
 */
final class AccessLog implements AutoCloseable {
  private final AccessLogWriter writer;

  /** An access log on {@code out}, or a disabled one when {@code enabled} is false. */
  AccessLog(boolean enabled, boolean json, java.io.OutputStream out) {
    this.writer = enabled ? new AccessLogWriter(out, json ? AccessLog::appendJson : AccessLog::appendText) : null;
  }

  /** What one line says. Times are in milliseconds; -1 means unknown or not applicable. */
  record Entry(
      long timeMillis,
      String requestId,
      String method,
      String path,
      String clientIp,
      String model,
      String modelSent,
      String backend,
      int attempts,
      boolean hedged,
      int status,
      boolean stream,
      double ttftMs,
      double latencyMs,
      long promptTokens,
      long completionTokens,
      long bytesOut,
      String error,
      String keyName,
      String userId) {}

  boolean enabled() {
    return writer != null;
  }

  void log(Entry e) {
    if (writer != null) {
      writer.append(e);
    }
  }

  /** Lines dropped because the output could not keep up. */
  long dropped() {
    return writer == null ? 0 : writer.dropped();
  }

  @Override
  public void close() {
    if (writer != null) {
      writer.close();
    }
  }

  static String toJson(Entry e) {
    StringBuilder sb = new StringBuilder(320);
    appendJson(sb, e);
    return sb.toString();
  }

  /** The JSON line, written straight into the writer's batch (no generator, no intermediate string). */
  static void appendJson(StringBuilder sb, Entry e) {
    sb.append("{\"time\":\"").append(isoMillis(e.timeMillis())).append("\",\"level\":\"INFO\",\"type\":\"access\"");
    string(sb, "request_id", e.requestId());
    string(sb, "method", e.method());
    string(sb, "path", e.path());
    string(sb, "client_ip", e.clientIp());
    if (e.keyName() != null || e.userId() != null) {
      string(sb, "key_name", e.keyName());
      string(sb, "user_id", e.userId());
    }
    string(sb, "model", e.model());
    string(sb, "model_sent", e.modelSent());
    string(sb, "backend", e.backend());
    sb.append(",\"attempts\":").append(e.attempts())
        .append(",\"hedged\":").append(e.hedged())
        .append(",\"status\":").append(e.status())
        .append(",\"stream\":").append(e.stream());
    if (e.ttftMs() >= 0) {
      sb.append(",\"ttft_ms\":").append(round(e.ttftMs()));
    }
    sb.append(",\"latency_ms\":").append(round(e.latencyMs()));
    if (e.promptTokens() >= 0) {
      sb.append(",\"prompt_tokens\":").append(e.promptTokens());
    }
    if (e.completionTokens() >= 0) {
      sb.append(",\"completion_tokens\":").append(e.completionTokens());
    }
    sb.append(",\"bytes\":").append(e.bytesOut());
    if (e.error() != null) {
      string(sb, "error", e.error());
    }
    sb.append('}');
  }

  /** {@code ,"name":"value"} with the value escaped as RFC 8259 requires, or {@code null}. */
  private static void string(StringBuilder sb, String name, String value) {
    sb.append(",\"").append(name).append("\":");
    if (value == null) {
      sb.append("null");
      return;
    }
    sb.append('"');
    escaped(sb, value);
    sb.append('"');
  }

  /** The value with JSON's escapes for quotes, backslashes and control characters. */
  private static void escaped(StringBuilder sb, String value) {
    int plain = 0;
    while (plain < value.length()) {
      char c = value.charAt(plain);
      if (c < 0x20 || c == '"' || c == '\\') {
        break;
      }
      plain++;
    }
    if (plain == value.length()) { // nothing to escape (the usual case): one copy
      sb.append(value);
      return;
    }
    sb.append(value, 0, plain);
    for (int i = plain; i < value.length(); i++) {
      char c = value.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) {
            sb.append("\\u00").append(HEX[c >> 4]).append(HEX[c & 0xf]);
          } else {
            sb.append(c);
          }
        }
      }
    }
  }

  private static final char[] HEX = "0123456789abcdef".toCharArray();

  static String toText(Entry e) {
    StringBuilder sb = new StringBuilder(256);
    appendText(sb, e);
    return sb.toString();
  }

  static void appendText(StringBuilder sb, Entry e) {
    sb.append(isoMillis(e.timeMillis())).append(" access request_id=");
    text(sb, e.requestId());
    sb.append(" method=").append(e.method()).append(" path=");
    text(sb, e.path());
    sb.append(" client_ip=");
    text(sb, e.clientIp());
    if (e.keyName() != null || e.userId() != null) {
      sb.append(" key_name=\"");
      text(sb, String.valueOf(e.keyName()).replace("\"", "'"));
      sb.append("\" user_id=");
      text(sb, e.userId());
    }
    sb.append(" model=");
    text(sb, e.model());
    sb.append(" model_sent=");
    text(sb, e.modelSent());
    sb.append(" backend=");
    text(sb, e.backend());
    sb.append(" attempts=").append(e.attempts())
        .append(" hedged=").append(e.hedged())
        .append(" status=").append(e.status())
        .append(" stream=").append(e.stream());
    if (e.ttftMs() >= 0) {
      sb.append(" ttft_ms=").append(round(e.ttftMs()));
    }
    sb.append(" latency_ms=").append(round(e.latencyMs()));
    if (e.promptTokens() >= 0) {
      sb.append(" prompt_tokens=").append(e.promptTokens());
    }
    if (e.completionTokens() >= 0) {
      sb.append(" completion_tokens=").append(e.completionTokens());
    }
    sb.append(" bytes=").append(e.bytesOut());
    if (e.error() != null) {
      sb.append(" error=\"");
      text(sb, e.error().replace("\"", "'"));
      sb.append('"');
    }
  }

  /**
   * A value of the text line, escaped as in the JSON line (a line break becomes backslash and n): a
   * model name or an error with a line break in it cannot start a line of its own.
   */
  private static void text(StringBuilder sb, String value) {
    if (value == null) {
      sb.append("null");
    } else {
      escaped(sb, value);
    }
  }

  /** The second last formatted, shared by all threads (immutable, so a stale read is harmless). */
  private record Second(long epochSecond, String prefix) {}

  private static volatile Second second = new Second(-1, "");

  /** ISO-8601 UTC with milliseconds ({@code 2026-01-14T10:00:00.123Z}), formatting each second once. */
  static String isoMillis(long epochMillis) {
    long sec = Math.floorDiv(epochMillis, 1000);
    Second s = second;
    if (s.epochSecond() != sec) {
      String full = Instant.ofEpochSecond(sec).toString(); // 2026-01-14T10:00:00Z
      s = new Second(sec, full.substring(0, full.length() - 1));
      second = s;
    }
    int ms = (int) Math.floorMod(epochMillis, 1000);
    char[] tail = {'.', (char) ('0' + ms / 100), (char) ('0' + ms / 10 % 10), (char) ('0' + ms % 10), 'Z'};
    return s.prefix().concat(new String(tail));
  }

  private static double round(double ms) {
    return Math.round(ms * 1000) / 1000.0;
  }
}
