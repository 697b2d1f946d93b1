package io.llmproxy.api;

import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;

/** A request's {@code Content-Length}, read the same way wherever a body's size is checked before it arrives. */
public final class DeclaredLength {
  /** No {@code Content-Length} (a chunked body, HTTP/2 without one, or no body). */
  public static final long NONE = -1;
  /** A {@code Content-Length} that is not a number (Netty's HTTP/1.1 decoder lets some through). */
  public static final long INVALID = -2;

  private DeclaredLength() {}

  /** The declared size in bytes, {@link #NONE} or {@link #INVALID}. */
  public static long of(HttpServerRequest req) {
    String value = req.getHeader(HttpHeaders.CONTENT_LENGTH);
    if (value == null) {
      return NONE;
    }
    try {
      long n = Long.parseLong(value.strip());
      return n < 0 ? INVALID : n;
    } catch (NumberFormatException e) {
      return INVALID;
    }
  }
}
