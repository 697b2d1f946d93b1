package io.llmproxy.server;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.io.StringWriter;
import java.time.Instant;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One line per request (SPEC §8) on the {@code llmproxy.access} logger, which
 * {@link io.llmproxy.cli.LoggingSetup} sends through an asynchronous appender. JSON by default;
 * {@code key=value} pairs with {@code logging.format: text}. Never contains a client key.
 */
public final class AccessLog {
  public static final String LOGGER = "llmproxy.access";
  private static final Logger LOG = LoggerFactory.getLogger(LOGGER);
  private static final JsonFactory JSON = new JsonFactory();

  private final boolean enabled;
  private final boolean json;

  public AccessLog(boolean enabled, boolean json) {
    this.enabled = enabled;
    this.json = json;
  }

  /** What one line says. Times are in milliseconds; -1 means unknown or not applicable. */
  public record Entry(
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

  public boolean enabled() {
    return enabled && LOG.isInfoEnabled();
  }

  public void log(Entry e) {
    if (!enabled()) {
      return;
    }
    LOG.info(json ? toJson(e) : toText(e));
  }

  static String toJson(Entry e) {
    StringWriter w = new StringWriter(320);
    try (JsonGenerator g = JSON.createGenerator(w)) {
      g.writeStartObject();
      g.writeStringField("time", Instant.now().toString());
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
    sb.append("access request_id=").append(e.requestId())
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

  private static double round(double ms) {
    return Math.round(ms * 1000) / 1000.0;
  }
}
