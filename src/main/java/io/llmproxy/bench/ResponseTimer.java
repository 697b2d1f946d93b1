package io.llmproxy.bench;

import io.llmproxy.proxy.BodyScanner;
import io.vertx.core.buffer.Buffer;

/**
 * Times one response as a client sees it. TTFT is the first SSE event carrying generated output
 * (SPEC §6.4: content, text, tool calls, reasoning or a finish reason; a role-only chunk does not
 * count), or the first body byte when the response is not a stream. The inter-token latency is
 * the gap between consecutive token events; events that arrive in one read are gaps of 0, so a
 * proxy that batches events shows in the low percentiles. Output tokens come from the backend's
 * {@code usage} when it sends one, else from the token events.
 */
final class ResponseTimer {
  private final long startNanos;
  private final BodyScanner scanner;
  private long firstTokenNanos;
  private long lastTokenNanos;
  private int tokenEvents;

  /**
   * @param startNanos  when the request was sent
   * @param contentType the response's content type
   */
  ResponseTimer(long startNanos, String contentType) {
    this.startNanos = startNanos;
    this.scanner = BodyScanner.isEventStream(contentType) ? BodyScanner.sseCountingTokens() : BodyScanner.plain();
  }

  /** One read of the body, at {@code nowNanos}; recorded into {@code into} when it is not null. */
  void chunk(Buffer chunk, long nowNanos, Recorder into) {
    boolean first = scanner.feed(chunk);
    if (first) {
      firstTokenNanos = nowNanos;
      if (into != null) {
        into.ttft(nowNanos - startNanos);
      }
    }
    if (!scanner.isSse()) {
      return;
    }
    int events = scanner.tokenEvents();
    for (; tokenEvents < events; tokenEvents++) {
      if (tokenEvents > 0 && into != null) {
        into.itl(nowNanos - lastTokenNanos);
      }
      lastTokenNanos = nowNanos;
    }
  }

  /** The response ended whole. */
  void end(long nowNanos, Recorder into) {
    if (into == null) {
      return;
    }
    long usage = scanner.usage().completionTokens();
    into.ok(nowNanos - startNanos, usage >= 0 ? usage : tokenEvents, tokenEvents);
  }

  /** When the first token arrived, or 0. */
  long firstTokenNanos() {
    return firstTokenNanos;
  }
}
