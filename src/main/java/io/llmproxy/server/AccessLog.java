package io.llmproxy.server;

import io.llmproxy.api.ClientText;

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

  /**
   * What one line says. Times are in milliseconds; -1 means unknown or not applicable. The model
   * names, the client's to choose, are kept to their start ({@link ClientText#clip}).
   */
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
      String userId) {
    Entry {
      model = ClientText.clip(model);
      modelSent = ClientText.clip(modelSent);
    }
  }

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
    LogLine line = new LogLine(512);
    appendJson(line, e);
    return line.toString();
  }

  /** The JSON line, written straight into the writer's batch as UTF-8 (no generator, no string). */
  static void appendJson(LogLine l, Entry e) {
    l.ascii("{\"time\":\"").isoMillis(e.timeMillis()).ascii("\",\"level\":\"INFO\",\"type\":\"access\"");
    string(l, ",\"request_id\":", e.requestId());
    string(l, ",\"method\":", e.method());
    string(l, ",\"path\":", e.path());
    string(l, ",\"client_ip\":", e.clientIp());
    if (e.keyName() != null || e.userId() != null) {
      string(l, ",\"key_name\":", e.keyName());
      string(l, ",\"user_id\":", e.userId());
    }
    string(l, ",\"model\":", e.model());
    string(l, ",\"model_sent\":", e.modelSent());
    string(l, ",\"backend\":", e.backend());
    l.ascii(",\"attempts\":").num(e.attempts())
        .ascii(",\"hedged\":").bool(e.hedged())
        .ascii(",\"status\":").num(e.status())
        .ascii(",\"stream\":").bool(e.stream());
    if (e.ttftMs() >= 0) {
      l.ascii(",\"ttft_ms\":").millis(e.ttftMs());
    }
    l.ascii(",\"latency_ms\":").millis(e.latencyMs());
    if (e.promptTokens() >= 0) {
      l.ascii(",\"prompt_tokens\":").num(e.promptTokens());
    }
    if (e.completionTokens() >= 0) {
      l.ascii(",\"completion_tokens\":").num(e.completionTokens());
    }
    l.ascii(",\"bytes\":").num(e.bytesOut());
    if (e.error() != null) {
      string(l, ",\"error\":", e.error());
    }
    l.ascii('}');
  }

  /** {@code ,"name":"value"} with the value escaped as RFC 8259 requires, or {@code null}. */
  private static void string(LogLine l, String nameAndColon, String value) {
    l.ascii(nameAndColon);
    if (value == null) {
      l.escaped(null);
    } else {
      l.ascii('"').escaped(value).ascii('"');
    }
  }

  static String toText(Entry e) {
    LogLine line = new LogLine(512);
    appendText(line, e);
    return line.toString();
  }

  static void appendText(LogLine l, Entry e) {
    l.isoMillis(e.timeMillis()).ascii(" access request_id=").escaped(e.requestId())
        .ascii(" method=").escaped(e.method())
        .ascii(" path=").escaped(e.path())
        .ascii(" client_ip=").escaped(e.clientIp());
    if (e.keyName() != null || e.userId() != null) {
      l.ascii(" key_name=\"").escaped(String.valueOf(e.keyName()).replace("\"", "'"))
          .ascii("\" user_id=").escaped(e.userId());
    }
    l.ascii(" model=").escaped(e.model())
        .ascii(" model_sent=").escaped(e.modelSent())
        .ascii(" backend=").escaped(e.backend())
        .ascii(" attempts=").num(e.attempts())
        .ascii(" hedged=").bool(e.hedged())
        .ascii(" status=").num(e.status())
        .ascii(" stream=").bool(e.stream());
    if (e.ttftMs() >= 0) {
      l.ascii(" ttft_ms=").millis(e.ttftMs());
    }
    l.ascii(" latency_ms=").millis(e.latencyMs());
    if (e.promptTokens() >= 0) {
      l.ascii(" prompt_tokens=").num(e.promptTokens());
    }
    if (e.completionTokens() >= 0) {
      l.ascii(" completion_tokens=").num(e.completionTokens());
    }
    l.ascii(" bytes=").num(e.bytesOut());
    if (e.error() != null) {
      // a value of the text line is escaped as in the JSON line (a line break becomes backslash and
      // n): a model name or an error with a line break in it cannot start a line of its own
      l.ascii(" error=\"").escaped(e.error().replace("\"", "'")).ascii('"');
    }
  }

  /** ISO-8601 UTC with milliseconds ({@code 2026-01-14T10:00:00.123Z}), as the lines write it. */
  static String isoMillis(long epochMillis) {
    return new LogLine(32).isoMillis(epochMillis).toString();
  }

}
