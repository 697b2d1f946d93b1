package io.llmproxy.config;

import java.util.Arrays;

/**
 * Parses IPv4 and IPv6 address literals and CIDR blocks by hand, so that a host name is refused and
 * never looked up in DNS.
 */
public final class IpLiterals {

  private IpLiterals() {}

  /**
   * Checks an address ({@code 10.0.0.1}, {@code ::1}) or a CIDR block ({@code 10.0.1.0/24},
   * {@code fd00::/8}). Host bits set below the prefix are allowed, as in Go's {@code ParseCIDR}.
   *
   * @throws IllegalArgumentException with a message naming what is wrong
   */
  public static void checkAddressOrCidr(String text) {
    String s = text.strip();
    int slash = s.indexOf('/');
    String address = slash < 0 ? s : s.substring(0, slash);
    byte[] bytes = parse(address);
    if (bytes == null) {
      boolean looksLikeName = address.chars().anyMatch(Character::isLetter) && !address.contains(":");
      throw new IllegalArgumentException("'" + s + "' is not an IP address or CIDR block"
          + (looksLikeName ? " (host names are not allowed)" : "")
          + "; write for example 10.0.1.0/24, 192.168.1.7 or fd00::/8");
    }
    if (slash >= 0) {
      String prefix = s.substring(slash + 1);
      int max = bytes.length * 8;
      if (prefix.isEmpty() || prefix.length() > 3 || !prefix.chars().allMatch(c -> c >= '0' && c <= '9')
          || Integer.parseInt(prefix) > max) {
        throw new IllegalArgumentException("'" + s + "' has a bad prefix length; it must be 0.." + max);
      }
    }
  }

  /**
   * The 4 or 16 bytes of an IPv4 or IPv6 address literal, or null: the same parser as {@link
   * #checkAddressOrCidr}, so what passes validation is what the rules are built from.
   */
  public static byte[] parse(String address) {
    return address.contains(":") ? parseIpv6(address) : parseIpv4(address);
  }

  /** The 4 bytes of a dotted-quad IPv4 address, or null. Leading zeros are refused (octal is ambiguous). */
  static byte[] parseIpv4(String s) {
    String[] parts = s.split("\\.", -1);
    if (parts.length != 4) {
      return null;
    }
    byte[] bytes = new byte[4];
    for (int i = 0; i < 4; i++) {
      String part = parts[i];
      if (part.isEmpty() || part.length() > 3 || (part.length() > 1 && part.charAt(0) == '0')
          || !part.chars().allMatch(c -> c >= '0' && c <= '9')) {
        return null;
      }
      int value = Integer.parseInt(part);
      if (value > 255) {
        return null;
      }
      bytes[i] = (byte) value;
    }
    return bytes;
  }

  /**
   * The 16 bytes of an IPv6 address ({@code ::1}, {@code fe80::1}, {@code ::ffff:10.0.0.1}), or null. A
   * zone ({@code %eth0}) is refused.
   */
  static byte[] parseIpv6(String s) {
    if (s.isEmpty() || s.contains("%")) {
      return null;
    }
    int doubleColon = s.indexOf("::");
    if (doubleColon >= 0 && s.indexOf("::", doubleColon + 1) >= 0) {
      return null;
    }
    String head = doubleColon < 0 ? s : s.substring(0, doubleColon);
    String tail = doubleColon < 0 ? "" : s.substring(doubleColon + 2);
    int[] headGroups = groups(head, doubleColon < 0);
    int[] tailGroups = groups(tail, true);
    if (headGroups == null || tailGroups == null) {
      return null;
    }
    int total = headGroups.length + tailGroups.length;
    if (doubleColon < 0 ? total != 8 : total > 7) {
      return null;
    }
    byte[] bytes = new byte[16];
    for (int i = 0; i < headGroups.length; i++) {
      bytes[2 * i] = (byte) (headGroups[i] >> 8);
      bytes[2 * i + 1] = (byte) headGroups[i];
    }
    int offset = 8 - tailGroups.length;
    for (int i = 0; i < tailGroups.length; i++) {
      bytes[2 * (offset + i)] = (byte) (tailGroups[i] >> 8);
      bytes[2 * (offset + i) + 1] = (byte) tailGroups[i];
    }
    return bytes;
  }

  /**
   * The 16-bit groups of one side of {@code ::}. The last group may be an embedded IPv4 address (two
   * groups) when {@code mayEndInIpv4}.
   */
  private static int[] groups(String side, boolean mayEndInIpv4) {
    if (side.isEmpty()) {
      return new int[0];
    }
    String[] parts = side.split(":", -1);
    int[] result = new int[parts.length + 1];
    int n = 0;
    for (int i = 0; i < parts.length; i++) {
      String part = parts[i];
      if (i == parts.length - 1 && mayEndInIpv4 && part.contains(".")) {
        byte[] v4 = parseIpv4(part);
        if (v4 == null) {
          return null;
        }
        result[n++] = ((v4[0] & 0xff) << 8) | (v4[1] & 0xff);
        result[n++] = ((v4[2] & 0xff) << 8) | (v4[3] & 0xff);
        continue;
      }
      if (part.isEmpty() || part.length() > 4) {
        return null;
      }
      int value = 0;
      for (int j = 0; j < part.length(); j++) {
        char c = part.charAt(j);
        int digit = c < 128 ? Character.digit(c, 16) : -1;
        if (digit < 0) {
          return null;
        }
        value = value * 16 + digit;
      }
      result[n++] = value;
    }
    return Arrays.copyOf(result, n);
  }
}
