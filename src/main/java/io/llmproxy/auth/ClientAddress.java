package io.llmproxy.auth;

import io.netty.handler.ipfilter.IpSubnetFilterRule;
import io.netty.util.NetUtil;
import java.net.InetAddress;
import java.util.List;

/**
 * The client's address: the peer's, unless the peer is one of {@code auth.trusted_proxies}; then the
 * {@code X-Forwarded-For} chain is read from the right, skipping trusted proxies, and the first address
 * that is not one is the client. An address the client wrote itself (to the left of the first
 * untrusted hop) is never believed.
 */
public final class ClientAddress {
  private final List<IpSubnetFilterRule> trusted;

  public ClientAddress(List<String> trustedProxies) {
    this.trusted = trustedProxies.stream().map(ApiKey::rule).toList();
  }

  /**
   * @param peer           the connection's remote address text, may be null
   * @param forwardedFor   every {@code X-Forwarded-For} header value, in order
   * @return the client's address, or null when the peer's is unknown
   */
  public InetAddress resolve(String peer, List<String> forwardedFor) {
    InetAddress client = literal(peer);
    if (client == null || !isTrusted(client) || forwardedFor.isEmpty()) {
      return client;
    }
    for (int v = forwardedFor.size() - 1; v >= 0; v--) {
      String[] hops = forwardedFor.get(v).split(",");
      for (int i = hops.length - 1; i >= 0; i--) {
        InetAddress hop = literal(withoutPort(hops[i].strip()));
        if (hop == null) {
          return null; // garbage in the chain: the client is unknown (a key with address rules refuses it)
        }
        client = hop;
        if (!isTrusted(hop)) {
          return hop;
        }
      }
    }
    return client;
  }

  /**
   * The client's address as the access log names it: behind a trusted proxy, the one
   * X-Forwarded-For names ({@link #of}); else, or when the chain is unreadable, the peer's.
   */
  public String logged(io.vertx.core.http.HttpServerRequest req) {
    InetAddress resolved = trusted.isEmpty() ? null : of(req);
    if (resolved != null) {
      return resolved.getHostAddress();
    }
    io.vertx.core.net.SocketAddress peer = req.remoteAddress();
    return peer == null ? null : peer.hostAddress();
  }

  /** The client's address of a request. */
  public InetAddress of(io.vertx.core.http.HttpServerRequest req) {
    io.vertx.core.net.SocketAddress remote = req.remoteAddress();
    return resolve(remote == null ? null : remote.hostAddress(),
        trusted.isEmpty() ? List.of() : req.headers().getAll("x-forwarded-for"));
  }

  private boolean isTrusted(InetAddress a) {
    return ApiKey.matchesAny(trusted, a);
  }

  /** A hop as some proxies write it, with a port: {@code 10.0.0.7:51234}, {@code [fd00::7]:443}. */
  static String withoutPort(String hop) {
    if (hop.startsWith("[")) {
      int close = hop.indexOf(']');
      return close > 0 ? hop.substring(1, close) : hop;
    }
    int colon = hop.indexOf(':');
    return colon > 0 && hop.indexOf(':', colon + 1) < 0 ? hop.substring(0, colon) : hop;
  }

  /** An IPv4 or IPv6 literal (brackets and an IPv6 zone allowed), never a name lookup; null otherwise. */
  static InetAddress literal(String text) {
    if (text == null || text.isEmpty()) {
      return null;
    }
    String s = text;
    if (s.startsWith("[") && s.endsWith("]")) {
      s = s.substring(1, s.length() - 1);
    }
    byte[] bytes = NetUtil.createByteArrayFromIpAddressString(s);
    if (bytes == null) {
      return null;
    }
    try {
      return InetAddress.getByAddress(bytes);
    } catch (java.net.UnknownHostException e) {
      return null;
    }
  }
}
