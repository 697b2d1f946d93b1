package io.llmproxy.proxy;

import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.util.AsciiString;
import io.vertx.core.MultiMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Which headers cross the proxy (RFC 9110 §7.6.1). Hop-by-hop headers, and any header the
 * {@code Connection} header names, stay on their own hop. Toward the backend the gateway also drops
 * the client's credentials (the client's key is never forwarded), {@code Host} and
 * {@code Content-Length} (set again for the body actually sent), {@code Accept-Encoding} (bodies are
 * scanned for tokens and usage, so they must arrive unencoded) and its own {@code x-llmproxy-*}
 * control headers. {@code X-Forwarded-For} is rebuilt with the client's address appended.
 */
public final class ForwardedHeaders {
  /** The request's id: read from the client, sent upstream and back to the client (encoded once). */
  public static final CharSequence X_REQUEST_ID = io.vertx.core.http.HttpHeaders.createOptimized("x-request-id");
  private static final String[] HOP_BY_HOP = {
      "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade", "trailer",
      "proxy-authenticate", "proxy-authorization"};
  private static final String[] REQUEST_ONLY = {
      "host", "content-length", "authorization", "api-key", "x-api-key", "accept-encoding", "expect",
      "x-forwarded-for"};
  private static final String GATEWAY_PREFIX = "x-llmproxy-";
  private static final AsciiString X_FORWARDED_FOR = AsciiString.cached("x-forwarded-for");

  private ForwardedHeaders() {}

  /** Copies the client's headers that may go upstream, and appends {@code clientIp} to X-Forwarded-For. */
  public static void copyRequest(MultiMap from, HttpHeaders to, String clientIp) {
    List<String> connection = from.contains(HttpHeaderNames.CONNECTION) ? from.getAll(HttpHeaderNames.CONNECTION) : List.of();
    // Vert.x's HTTP/1.x request headers are Netty headers too: their names and values cross as they
    // were decoded (no String made of each), and are encoded upstream from their bytes. HTTP/2's are
    // Strings, read here (never written) as the CharSequences they are.
    @SuppressWarnings({"unchecked", "rawtypes"})
    Iterator<Map.Entry<CharSequence, CharSequence>> it = from instanceof HttpHeaders nettyHeaders
        ? nettyHeaders.iteratorCharSequence() : (Iterator) from.iterator();
    while (it.hasNext()) {
      Map.Entry<CharSequence, CharSequence> e = it.next();
      CharSequence name = e.getKey();
      if (isOneOf(name, HOP_BY_HOP) || isOneOf(name, REQUEST_ONLY) || startsWithIgnoreCase(name, GATEWAY_PREFIX)
          || listedIn(connection, name)) {
        continue;
      }
      to.add(name, e.getValue());
    }
    String xff = from.get(X_FORWARDED_FOR);
    if (clientIp != null) {
      to.set(X_FORWARDED_FOR, xff == null || xff.isBlank() ? clientIp : xff + ", " + clientIp);
    } else if (xff != null) {
      to.set(X_FORWARDED_FOR, xff);
    }
  }

  /** Copies the backend's response headers that may go to the client. */
  public static void copyResponse(HttpHeaders from, MultiMap to) {
    List<String> connection = from.contains(HttpHeaderNames.CONNECTION) ? from.getAll(HttpHeaderNames.CONNECTION) : List.of();
    Iterator<Map.Entry<CharSequence, CharSequence>> it = from.iteratorCharSequence();
    while (it.hasNext()) {
      Map.Entry<CharSequence, CharSequence> e = it.next();
      CharSequence name = e.getKey();
      if (isOneOf(name, HOP_BY_HOP) || listedIn(connection, name)) {
        continue;
      }
      to.add(name, e.getValue());
    }
  }

  /** A cheap pre-check on the length and first letter, then a case-insensitive compare. */
  private static boolean isOneOf(CharSequence name, String[] lowerCaseNames) {
    int len = name.length();
    if (len == 0) {
      return false;
    }
    char first = AsciiString.toLowerCase(name.charAt(0));
    for (String n : lowerCaseNames) {
      if (n.length() == len && n.charAt(0) == first && AsciiString.regionMatches(name, true, 1, n, 1, len - 1)) {
        return true;
      }
    }
    return false;
  }

  private static boolean startsWithIgnoreCase(CharSequence s, String lowerPrefix) {
    return AsciiString.regionMatches(s, true, 0, lowerPrefix, 0, lowerPrefix.length());
  }

  /** True when one of the {@code Connection} header lines names this header. */
  private static boolean listedIn(List<String> connection, CharSequence name) {
    for (int i = 0; i < connection.size(); i++) {
      if (listedIn(connection.get(i), name)) {
        return true;
      }
    }
    return false;
  }

  /** True when the comma-separated {@code Connection} value names this header (optional whitespace: spaces and tabs). */
  static boolean listedIn(String connection, CharSequence name) {
    if (connection == null) {
      return false;
    }
    int i = 0;
    int n = connection.length();
    while (i < n) {
      int comma = connection.indexOf(',', i);
      int end = comma < 0 ? n : comma;
      int s = i;
      int e = end;
      while (s < e && isOws(connection.charAt(s))) {
        s++;
      }
      while (e > s && isOws(connection.charAt(e - 1))) {
        e--;
      }
      if (e - s == name.length() && AsciiString.regionMatches(connection, true, s, name, 0, name.length())) {
        return true;
      }
      i = end + 1;
    }
    return false;
  }

  private static boolean isOws(char c) {
    return c == ' ' || c == '\t';
  }
}
