package io.llmproxy.proxy;

/**
 * Finds {@code "usage": {...}} in a byte stream fed chunk by chunk, without buffering or parsing
 * anything else: a JSON response body, or an SSE stream whose events are JSON. Only the usage object
 * itself is copied and parsed. The raw bytes {@code "usage"} followed by {@code :} can only be an
 * object key (inside a string value the quotes would be escaped), so content never fools it. The last
 * usage object seen wins, which is what OpenAI's and vLLM's final usage chunk means.
 */
final class UsageSniffer {
  private static final byte[] KEY = {'"', 'u', 's', 'a', 'g', 'e', '"'};
  private static final int MAX_OBJECT = 16 * 1024;

  private enum State { SEARCH, COLON, VALUE, CAPTURE }

  private State state = State.SEARCH;
  private int matched;
  private byte[] captured;
  private int capturedLen;
  private int depth;
  private boolean inString;
  private boolean escaped;
  private Usage usage = Usage.NONE;

  Usage usage() {
    return usage;
  }

  void feed(byte[] a, int from, int to) {
    for (int i = from; i < to; i++) {
      if (state == State.SEARCH && matched == 0) {
        // Nothing can start before the next quote: skip to it, then try the whole key at once.
        while (i < to && a[i] != '"') {
          i++;
        }
        if (i == to) {
          return;
        }
        if (i + KEY.length > to) {
          matched = 1; // the key may go on in the next chunk: the byte-by-byte matcher carries on
          continue;
        }
        if (a[i + 1] == 'u' && a[i + 2] == 's' && a[i + 3] == 'a' && a[i + 4] == 'g' && a[i + 5] == 'e'
            && a[i + 6] == '"') {
          i += KEY.length - 1;
          state = State.COLON;
        }
        continue;
      }
      byte c = a[i];
      switch (state) {
        case SEARCH -> {
          if (c == KEY[matched]) {
            if (++matched == KEY.length) {
              matched = 0;
              state = State.COLON;
            }
          } else {
            matched = c == '"' ? 1 : 0;
          }
        }
        case COLON -> {
          if (c == ':') {
            state = State.VALUE;
          } else if (!isSpace(c)) {
            state = State.SEARCH;
            matched = c == '"' ? 1 : 0;
          }
        }
        case VALUE -> {
          if (c == '{') {
            state = State.CAPTURE;
            if (captured == null) {
              captured = new byte[256];
            }
            capturedLen = 0;
            depth = 0;
            inString = false;
            escaped = false;
            capture(c);
          } else if (!isSpace(c)) {
            state = State.SEARCH; // "usage": null
            matched = c == '"' ? 1 : 0;
          }
        }
        case CAPTURE -> capture(c);
      }
    }
  }

  private void capture(byte c) {
    if (capturedLen == captured.length) {
      if (captured.length >= MAX_OBJECT) {
        state = State.SEARCH; // not a usage object we understand
        return;
      }
      captured = java.util.Arrays.copyOf(captured, captured.length * 2);
    }
    captured[capturedLen++] = c;
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        inString = false;
      }
      return;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '{') {
      depth++;
    } else if (c == '}' && --depth == 0) {
      parse();
      state = State.SEARCH;
    }
  }

  /**
   * Reads {@code prompt_tokens} and {@code completion_tokens} from the captured object's top level
   * (nested objects such as {@code prompt_tokens_details} are skipped), without allocating: this
   * runs once per response on the event loop.
   */
  private void parse() {
    long prompt = -1;
    long completion = -1;
    int depth = 0;
    int i = 0;
    while (i < capturedLen) {
      byte c = captured[i];
      if (c == '"') {
        int end = stringEnd(i + 1);
        if (end < 0) {
          return;
        }
        if (depth == 1) {
          int field = field(i + 1, end);
          int v = skipSpace(end + 1);
          if (field != 0 && v < capturedLen && captured[v] == ':') {
            long n = number(skipSpace(v + 1));
            if (field == 1) {
              prompt = n;
            } else {
              completion = n;
            }
          }
        }
        i = end + 1;
        continue;
      }
      if (c == '{' || c == '[') {
        depth++;
      } else if (c == '}' || c == ']') {
        depth--;
      }
      i++;
    }
    if (prompt >= 0 || completion >= 0) {
      usage = new Usage(prompt, completion);
    }
  }

  private static final byte[] PROMPT = "prompt_tokens".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
  private static final byte[] COMPLETION = "completion_tokens".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

  /** Index of the quote closing a string that starts at {@code from}, or -1. */
  private int stringEnd(int from) {
    for (int i = from; i < capturedLen; i++) {
      if (captured[i] == '\\') {
        i++;
      } else if (captured[i] == '"') {
        return i;
      }
    }
    return -1;
  }

  /** 1 for {@code prompt_tokens}, 2 for {@code completion_tokens}, else 0. */
  private int field(int from, int to) {
    if (java.util.Arrays.equals(captured, from, to, PROMPT, 0, PROMPT.length)) {
      return 1;
    }
    return java.util.Arrays.equals(captured, from, to, COMPLETION, 0, COMPLETION.length) ? 2 : 0;
  }

  private int skipSpace(int i) {
    while (i < capturedLen && isSpace(captured[i])) {
      i++;
    }
    return i;
  }

  /** A non-negative integer at {@code i}, or -1 (null, a string, a fraction are not counts). */
  private long number(int i) {
    long n = 0;
    int start = i;
    while (i < capturedLen && captured[i] >= '0' && captured[i] <= '9' && i - start < 18) {
      n = n * 10 + (captured[i] - '0');
      i++;
    }
    if (i == start || (i < capturedLen && (captured[i] == '.' || captured[i] == 'e' || captured[i] == 'E'))) {
      return -1;
    }
    return n;
  }

  private static boolean isSpace(byte c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  }
}
