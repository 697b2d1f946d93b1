package io.llmproxy.server;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.io.StringWriter;
import java.time.Instant;

/**
 * One line per request (SPEC §8) on standard output, formatted and written in batches by an
 * {@link AccessLogWriter} thread so that logging costs an event loop only a queue insert. JSON by
 * default; {@code key=value} pairs with {@code logging.format: text}. Never contains a client key.
 */
final class AccessLog implements AutoCloseable {
  private static final JsonFactory JSON = new JsonFactory();

  private final AccessLogWriter writer;

  /** An access log on {@code out}, or a disabled one when {@code enabled} is false. */
  AccessLog(boolean enabled, boolean json, java.io.OutputStream out) {
    this.writer = enabled ? new AccessLogWriter(out, json ? AccessLog::toJson : AccessLog::toText) : null;
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
      String error) {}

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
    StringWriter w = new StringWriter(320);
    try (JsonGenerator g = JSON.createGenerator(w)) {
      g.writeStartObject();
      g.writeStringField("time", isoMillis(e.timeMillis()));
      g.writeStringField("level", "INFO");
      g.writeStringField("type", "access");
      g.writeStringField("request_id", e.requestId());
      g.writeStringField("method", e.method());
      g.writeStringField("path", e.path());
      g.writeStringField("client_ip", e.clientIp());
      g.writeStringField("model", e.model());
      g.writeStringField("model_sent", e.modelSent());
      g.writeStringField("backend", e.backend());
      g.writeNumberField("attempts", e.attempts());
      g.writeBooleanField("hedged", e.hedged());
      g.writeNumberField("status", e.status());
      g.writeBooleanField("stream", e.stream());
      if (e.ttftMs() >= 0) {
        g.writeNumberField("ttft_ms", round(e.ttftMs()));
      }
      g.writeNumberField("latency_ms", round(e.latencyMs()));
      if (e.promptTokens() >= 0) {
        g.writeNumberField("prompt_tokens", e.promptTokens());
      }
      if (e.completionTokens() >= 0) {
        g.writeNumberField("completion_tokens", e.completionTokens());
      }
      g.writeNumberField("bytes", e.bytesOut());
      if (e.error() != null) {
        g.writeStringField("error", e.error());
      }
      g.writeEndObject();
    } catch (IOException ex) {
      return "{\"level\":\"ERROR\",\"msg\":\"access log line failed\"}";
    }
    return w.toString();
  }

  static String toText(Entry e) {
    StringBuilder sb = new StringBuilder(256);
    sb.append(isoMillis(e.timeMillis())).append(" access request_id=").append(e.requestId())
        .append(" method=").append(e.method())
        .append(" path=").append(e.path())
        .append(" client_ip=").append(e.clientIp())
        .append(" model=").append(e.model())
        .append(" model_sent=").append(e.modelSent())
        .append(" backend=").append(e.backend())
        .append(" attempts=").append(e.attempts())
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
      sb.append(" error=\"").append(e.error().replace("\"", "'")).append('"');
    }
    return sb.toString();
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
