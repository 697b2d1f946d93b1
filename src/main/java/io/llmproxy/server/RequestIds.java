package io.llmproxy.server;

import java.util.concurrent.ThreadLocalRandom;

/** {@code x-request-id}: the client's when it is sane, else a new random one. */
final class RequestIds {
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  private RequestIds() {}

  static String fromClientOrNew(String clientValue) {
    if (clientValue != null && isSane(clientValue)) {
      return clientValue;
    }
    return newId();
  }

  /** 96 random bits, hex, prefixed: {@code req_0f3c...}. */
  static String newId() {
    ThreadLocalRandom r = ThreadLocalRandom.current();
    char[] c = new char[28];
    c[0] = 'r';
    c[1] = 'e';
    c[2] = 'q';
    c[3] = '_';
    long a = r.nextLong();
    int b = r.nextInt();
    for (int i = 0; i < 16; i++) {
      c[4 + i] = HEX[(int) (a >>> (60 - 4 * i)) & 0xf];
    }
    for (int i = 0; i < 8; i++) {
      c[20 + i] = HEX[(b >>> (28 - 4 * i)) & 0xf];
    }
    return new String(c);
  }

  /** Printable ASCII without spaces or quotes, at most 128 characters: safe in headers and logs. */
  private static boolean isSane(String s) {
    if (s.isEmpty() || s.length() > 128) {
      return false;
    }
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      if (ch <= ' ' || ch >= 0x7f || ch == '"' || ch == '\\') {
        return false;
      }
    }
    return true;
  }
}
