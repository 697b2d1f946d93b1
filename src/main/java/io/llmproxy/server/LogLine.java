package io.llmproxy.server;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;

/**
 * A growable UTF-8 byte buffer that access-log lines are formatted into, written out as it is: no
 * UTF-16 builder, no string per line, no second encoding pass. Strings are copied byte for byte while
 * they are ASCII (as the fields almost always are) and UTF-8-encoded otherwise. Not thread-safe: one
 * per writer thread.
 */
final class LogLine {
  private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] NULL = {'n', 'u', 'l', 'l'};

  private byte[] buf;
  private int len;
  /** The second last formatted, per line builder: {@code 2026-01-14T10:00:00} as bytes. */
  private long second = Long.MIN_VALUE;
  private final byte[] secondPrefix = new byte[64];
  private int secondPrefixLen;

  LogLine(int capacity) {
    buf = new byte[capacity];
  }

  int length() {
    return len;
  }

  int capacity() {
    return buf.length;
  }

  void clear() {
    len = 0;
  }

  void writeTo(OutputStream out) throws IOException {
    out.write(buf, 0, len);
  }

  @Override
  public String toString() {
    return new String(buf, 0, len, StandardCharsets.UTF_8);
  }

  private void ensure(int more) {
    if (len + more > buf.length) {
      buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + more));
    }
  }

  LogLine ascii(char c) {
    ensure(1);
    buf[len++] = (byte) c;
    return this;
  }

  /** A string known to be ASCII (the line's own field names and punctuation). */
  LogLine ascii(String s) {
    int n = s.length();
    ensure(n);
    s.getBytes(0, n, buf, len); // ASCII: one byte per char
    len += n;
    return this;
  }

  LogLine bool(boolean b) {
    return ascii(b ? "true" : "false");
  }

  LogLine num(long v) {
    if (v == Long.MIN_VALUE) {
      return ascii(Long.toString(v));
    }
    ensure(20);
    if (v < 0) {
      buf[len++] = '-';
      v = -v;
    }
    int start = len;
    do {
      buf[len++] = (byte) ('0' + v % 10);
      v /= 10;
    } while (v != 0);
    reverse(start, len - 1);
    return this;
  }

  /** Milliseconds rounded to the microsecond: {@code 12.346}, {@code 1.5}, {@code 2.0}. */
  LogLine millis(double ms) {
    long micros = Math.round(ms * 1000);
    if (micros < 0) {
      ascii('-');
      micros = -micros;
    }
    num(micros / 1000);
    int frac = (int) (micros % 1000);
    ensure(4);
    buf[len++] = '.';
    buf[len++] = (byte) ('0' + frac / 100);
    if (frac % 100 != 0) {
      buf[len++] = (byte) ('0' + frac / 10 % 10);
      if (frac % 10 != 0) {
        buf[len++] = (byte) ('0' + frac % 10);
      }
    }
    return this;
  }

  /** The value as UTF-8, with JSON's escapes for quotes, backslashes and control characters; {@code null} for null. */
  LogLine escaped(String s) {
    if (s == null) {
      ensure(4);
      System.arraycopy(NULL, 0, buf, len, 4);
      len += 4;
      return this;
    }
    int n = s.length();
    ensure(n);
    int plain = 0;
    while (plain < n && isPlain(s.charAt(plain))) {
      plain++;
    }
    s.getBytes(0, plain, buf, len); // the plain ASCII run at the start (usually all of it) in one copy
    len += plain;
    for (int i = plain; i < n; i++) {
      char c = s.charAt(i);
      if (isPlain(c)) {
        buf[len++] = (byte) c; // there is room for one byte for each char left
        continue;
      }
      ensure(6 + n - i); // the longest escape, and after it one byte for each char left
      switch (c) {
        case '"' -> escape('"');
        case '\\' -> escape('\\');
        case '\n' -> escape('n');
        case '\r' -> escape('r');
        case '\t' -> escape('t');
        default -> {
          if (c < 0x20) {
            buf[len++] = '\\';
            buf[len++] = 'u';
            buf[len++] = '0';
            buf[len++] = '0';
            buf[len++] = HEX[c >> 4];
            buf[len++] = HEX[c & 0xf];
          } else {
            i = utf8(s, i, n);
          }
        }
      }
    }
    return this;
  }

  /** Printable ASCII other than the quote and the backslash: copied as it is. */
  private static boolean isPlain(char c) {
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
  }

  private void escape(char c) {
    buf[len++] = '\\';
    buf[len++] = (byte) c;
  }

  /** Encodes the non-ASCII char at {@code i} (a surrogate pair as one code point); returns the last index used. */
  private int utf8(String s, int i, int n) {
    int cp = s.codePointAt(i);
    if (cp < 0x800) {
      buf[len++] = (byte) (0xc0 | cp >> 6);
      buf[len++] = (byte) (0x80 | cp & 0x3f);
    } else if (cp < 0x10000) {
      if (Character.isSurrogate((char) cp)) {
        buf[len++] = '?'; // a lone surrogate is not text
        return i;
      }
      buf[len++] = (byte) (0xe0 | cp >> 12);
      buf[len++] = (byte) (0x80 | cp >> 6 & 0x3f);
      buf[len++] = (byte) (0x80 | cp & 0x3f);
    } else {
      buf[len++] = (byte) (0xf0 | cp >> 18);
      buf[len++] = (byte) (0x80 | cp >> 12 & 0x3f);
      buf[len++] = (byte) (0x80 | cp >> 6 & 0x3f);
      buf[len++] = (byte) (0x80 | cp & 0x3f);
      return i + 1;
    }
    return i;
  }

  private void reverse(int from, int to) {
    while (from < to) {
      byte t = buf[from];
      buf[from++] = buf[to];
      buf[to--] = t;
    }
  }

  /** ISO-8601 UTC with milliseconds ({@code 2026-01-14T10:00:00.123Z}), the date and time formatted once a second. */
  LogLine isoMillis(long epochMillis) {
    long sec = Math.floorDiv(epochMillis, 1000);
    if (sec != second) {
      String full = Instant.ofEpochSecond(sec).toString(); // 2026-01-14T10:00:00Z
      secondPrefixLen = full.length() - 1;
      full.getBytes(0, secondPrefixLen, secondPrefix, 0);
      second = sec;
    }
    int ms = (int) Math.floorMod(epochMillis, 1000);
    ensure(secondPrefixLen + 5);
    System.arraycopy(secondPrefix, 0, buf, len, secondPrefixLen);
    len += secondPrefixLen;
    buf[len++] = '.';
    buf[len++] = (byte) ('0' + ms / 100);
    buf[len++] = (byte) ('0' + ms / 10 % 10);
    buf[len++] = (byte) ('0' + ms % 10);
    buf[len++] = 'Z';
    return this;
  }
}
