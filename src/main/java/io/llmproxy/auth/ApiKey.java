package io.llmproxy.auth;

import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.AuthConfig;
import io.llmproxy.config.IpLiterals;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.config.QuotaPeriod;
import io.llmproxy.routing.Glob;
import io.llmproxy.store.StoredKey;
import io.netty.handler.ipfilter.IpFilterRuleType;
import io.netty.handler.ipfilter.IpSubnetFilterRule;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * A key as the request path uses it: the stored record with its address rules and model globs
 * compiled, and the defaults ({@code auth.defaults}, {@code rate_limit.per_key}) applied.
 */
public final class ApiKey {
  private final StoredKey stored;
  private final byte[] hash;
  private final List<IpSubnetFilterRule> ips;
  private final List<Glob> models;
  private final long quota;
  private final QuotaPeriod period;
  private final KeyLimits limits;

  ApiKey(StoredKey stored, AuthConfig.KeyDefaults defaults, KeyLimits perKey) {
    this.stored = stored;
    this.hash = java.util.HexFormat.of().parseHex(stored.hash());
    this.ips = new ArrayList<>();
    for (String cidr : stored.allowedIps()) {
      ips.add(rule(cidr));
    }
    this.models = Glob.all(stored.allowedModels());
    this.quota = stored.totalQuota() != null ? stored.totalQuota() : defaults.totalQuota();
    this.period = stored.quotaResetPeriod() != null ? stored.quotaResetPeriod() : defaults.quotaResetPeriod();
    this.limits = merge(perKey, stored.rateLimit());
  }

  /**
   * A CIDR block or a single address, parsed as it was validated ({@link IpLiterals}: a literal, so no
   * name is looked up). An IPv4-mapped IPv6 address ({@code ::ffff:10.0.0.1}, {@code ::ffff:0:0/96})
   * is the IPv4 address it maps, as Java and the client's address see it.
   */
  static IpSubnetFilterRule rule(String cidr) {
    String s = cidr.strip();
    int slash = s.indexOf('/');
    byte[] bytes = IpLiterals.parse(slash < 0 ? s : s.substring(0, slash));
    if (bytes == null) {
      throw new IllegalArgumentException("'" + cidr + "' is not an IP address or CIDR block");
    }
    int bits = bytes.length * 8;
    int prefix = slash < 0 ? bits : Integer.parseInt(s.substring(slash + 1));
    if (prefix < 0 || prefix > bits) {
      throw new IllegalArgumentException("'" + cidr + "' has a bad prefix length; it must be 0.." + bits);
    }
    InetAddress address;
    try {
      address = InetAddress.getByAddress(bytes); // a mapped address comes back as an Inet4Address
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("'" + cidr + "' is not an IP address or CIDR block", e);
    }
    if (bytes.length == 16 && address instanceof Inet4Address) {
      prefix = Math.max(0, prefix - 96);
    }
    return new IpSubnetFilterRule(address, prefix, IpFilterRuleType.ACCEPT);
  }

  private static KeyLimits merge(KeyLimits base, KeyLimits override) {
    if (override == null) {
      return base;
    }
    return new KeyLimits(
        override.requestsPerSecond() != null ? override.requestsPerSecond() : base.requestsPerSecond(),
        override.requestsPerMinute() != null ? override.requestsPerMinute() : base.requestsPerMinute(),
        override.tokensPerMinute() != null ? override.tokensPerMinute() : base.tokensPerMinute(),
        override.maxConcurrent() != null ? override.maxConcurrent() : base.maxConcurrent());
  }

  public String id() {
    return stored.id();
  }

  public String name() {
    return stored.name();
  }

  public String userId() {
    return stored.userId();
  }

  public StoredKey stored() {
    return stored;
  }

  byte[] hash() {
    return hash;
  }

  public boolean disabled() {
    return stored.status() == KeyStatus.DISABLED;
  }

  public boolean expired(Instant now) {
    return stored.expiresAt() != null && !now.isBefore(stored.expiresAt());
  }

  public boolean hasAddressRules() {
    return !ips.isEmpty();
  }

  /** Any address when the key lists none. */
  public boolean allowsAddress(InetAddress address) {
    if (ips.isEmpty()) {
      return true;
    }
    return address != null && matchesAny(ips, address);
  }

  /** Whether any of {@code rules} (see {@link #rule}) holds {@code address}. */
  static boolean matchesAny(List<IpSubnetFilterRule> rules, InetAddress address) {
    InetSocketAddress a = new InetSocketAddress(address, 0);
    for (IpSubnetFilterRule r : rules) {
      if (r.matches(a)) {
        return true;
      }
    }
    return false;
  }

  /** Any model when the key lists none; else a glob over the name the client sent. */
  public boolean allowsModel(String model) {
    return models.isEmpty() || (model != null && Glob.anyMatches(models, model));
  }

  /** Tokens per period; 0 = unlimited. */
  public long quota() {
    return quota;
  }

  public QuotaPeriod period() {
    return period;
  }

  /** The effective per-key limits (overrides over {@code rate_limit.per_key}); null fields mean no limit. */
  public KeyLimits limits() {
    return limits;
  }

  /** A label for logs: name and user id, never the key. */
  @Override
  public String toString() {
    return (stored.name() == null ? stored.id() : stored.name()) + (stored.userId() == null ? "" : " (" + stored.userId() + ")");
  }
}
