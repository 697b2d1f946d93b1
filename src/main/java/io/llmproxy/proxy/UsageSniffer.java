package io.llmproxy.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;

/**
 * Finds {@code "usage": {...}} in a byte stream fed chunk by chunk, without buffering or parsing
 * anything else: a JSON response body, or an SSE stream whose events are JSON. Only the usage object
 * itself is copied and parsed. The raw bytes {@code "usage"} followed by {@code :} can only be an
 * object key (inside a string value the quotes would be escaped), so content never fools it. The last
 * usage object seen wins, which is what OpenAI's and vLLM's final usage chunk means.
 */
final class UsageSniffer {
  private static final ObjectMapper JSON = new ObjectMapper();
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

  private void parse() {
    try {
      JsonNode n = JSON.readTree(captured, 0, capturedLen);
      long prompt = n.path("prompt_tokens").asLong(-1);
      long completion = n.path("completion_tokens").asLong(-1);
      if (prompt >= 0 || completion >= 0) {
        usage = new Usage(prompt, completion);
      }
    } catch (IOException e) {
      // Not JSON after all: keep what we had.
    }
  }

  private static boolean isSpace(byte c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  }
}
