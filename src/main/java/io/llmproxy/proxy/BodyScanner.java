package io.llmproxy.proxy;

import io.netty.buffer.ByteBuf;
import io.vertx.core.buffer.Buffer;
import java.util.Arrays;

/**
 * Watches an upstream response body as it streams through, without holding it: where the first
 * token is, where SSE events end, how many events carried output, and the backend's usage. Bytes are
 * read in place and never re-serialised. Only data lines before the first token are copied (to parse
 * them, up to {@link #MAX_LINE} each), and only the usage object after that.
 *
 * <p>For a body that is not {@code text/event-stream}, the first byte is the first token.
 */
public final class BodyScanner {
  private final boolean sse;
  private final boolean firstByteIsToken;
  /** Classify every event, not only those before the first token (the load generator's ITL). */
  private final boolean classifyAll;
  /** Per event loop: where a direct buffer's bytes are copied to be scanned. */
  private static final ThreadLocal<byte[]> SCRATCH = ThreadLocal.withInitial(() -> new byte[16 * 1024]);

  private final UsageSniffer usage = new UsageSniffer();
  private boolean firstToken;
  private long bytes;
  private int events;
  private int outputEvents;
  private int tokenEvents;
  private boolean eventIsToken;

  // SSE line state
  private int lineLength;
  private boolean lineIsData;
  private boolean prevLineEmpty = true;
  private boolean eventHasData;
  private boolean eventHasOutput;
  private boolean lastByteCr;
  private byte[] line;
  private int lineCopied;
  /** The data line being copied passed {@link #MAX_LINE}: it is not parsed, and counts as output. */
  private boolean lineTooLong;
  /**
   * The most of one data line copied to be parsed. A line longer than this carries output (no role
   * chunk is that long), and a backend that sends one without end holds no more than this.
   */
  static final int MAX_LINE = 1 << 20;
  private static final byte[] DATA = {'d', 'a', 't', 'a', ':'};

  private BodyScanner(boolean sse, boolean firstByteIsToken, boolean classifyAll) {
    this.sse = sse;
    this.firstByteIsToken = firstByteIsToken;
    this.classifyAll = classifyAll;
  }

  /**
   * Loads and initialises the JSON machinery the scanner uses, so the first request does not pay
   * for it on its first token.
   */
  public static void warmUp() {
    BodyScanner s = sse(false);
    s.feed(Buffer.buffer("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
        + "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"
        + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n"));
  }

  /** A scanner for an SSE body; {@code firstByteIsToken} for {@code first_token: first_byte}. */
  public static BodyScanner sse(boolean firstByteIsToken) {
    return new BodyScanner(true, firstByteIsToken, false);
  }

  /**
   * A scanner for an SSE body that parses every event, to count those carrying generated output
   * ({@link #tokenEvents()}). Costs a JSON parse per event: for measuring, not for proxying.
   */
  public static BodyScanner sseCountingTokens() {
    return new BodyScanner(true, false, true);
  }

  /** A scanner for any other body. */
  public static BodyScanner plain() {
    return new BodyScanner(false, true, false);
  }

  public boolean isSse() {
    return sse;
  }

  private static final String EVENT_STREAM = "text/event-stream";

  /** {@code text/event-stream}, compared as a media type: parameters, surrounding blanks and case ignored. */
  public static boolean isEventStream(String contentType) {
    if (contentType == null) {
      return false;
    }
    int end = contentType.indexOf(';');
    if (end < 0) {
      end = contentType.length();
    }
    int start = 0;
    while (start < end && contentType.charAt(start) <= ' ') {
      start++;
    }
    while (end > start && contentType.charAt(end - 1) <= ' ') {
      end--;
    }
    return end - start == EVENT_STREAM.length() && contentType.regionMatches(true, start, EVENT_STREAM, 0, end - start);
  }

  /**
   * Scans one chunk.
   *
   * @return true when the first token is in this chunk (only once per body)
   */
  public boolean feed(Buffer chunk) {
    ByteBuf bb = Chunks.bytes(chunk); // not getByteBuf(): that allocates a slice, and a wrapper, per chunk
    int len = bb.readableBytes();
    if (len == 0) {
      return false;
    }
    byte[] a;
    int off;
    if (bb.hasArray()) {
      a = bb.array();
      off = bb.arrayOffset() + bb.readerIndex();
    } else {
      // A direct buffer (what the socket gives): copied into this thread's scratch array, which
      // is reused (the scan is done before feed returns, and nothing keeps a reference to it).
      a = SCRATCH.get();
      if (a.length < len) {
        a = new byte[Math.max(len, a.length * 2)];
        SCRATCH.set(a);
      }
      bb.getBytes(bb.readerIndex(), a, 0, len);
      off = 0;
    }
    bytes += len;
    usage.feed(a, off, off + len);
    boolean wasFirst = firstToken;
    if (!sse) {
      firstToken = true;
    } else {
      if (firstByteIsToken) {
        firstToken = true;
      }
      scanLines(a, off, off + len);
    }
    return !wasFirst && firstToken;
  }

  private void scanLines(byte[] a, int from, int to) {
    int lineStart = from;
    for (int i = from; i < to; i++) {
      byte c = a[i];
      if (c == '\n') {
        endLine(a, lineStart, i);
        lineStart = i + 1;
      } else if (lineLength >= DATA.length) {
        // past the part of the line that classifies it: nothing to do until its end
        int j = i + 1;
        while (j < to && a[j] != '\n') {
          j++;
        }
        lineLength += j - i;
        lastByteCr = a[j - 1] == '\r';
        i = j - 1;
      } else {
        lineIsData = lineLength == 0 ? c == 'd' : lineIsData && c == DATA[lineLength];
        lineLength++;
        lastByteCr = c == '\r';
      }
    }
    // Before the first token, a line that is (or may still become) a data line is kept, to parse it.
    if (lineStart < to && (!firstToken || classifyAll) && lineIsData) {
      copy(a, lineStart, to);
    }
  }

  private static final byte[] DONE = "[DONE]".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

  /**
   * The line is {@code data: [DONE]} or {@code data:[DONE]} (the end marker carries no output); a
   * line split across chunks is never it.
   */
  private boolean isDone(byte[] a, int start, int end) {
    if (lineLength != end - start) {
      return false;
    }
    int from = start + DATA.length;
    if (from < end && a[from] == ' ') {
      from++;
    }
    int len = end - from - (lastByteCr ? 1 : 0);
    if (len != DONE.length) {
      return false;
    }
    for (int i = 0; i < len; i++) {
      if (a[from + i] != DONE[i]) {
        return false;
      }
    }
    return true;
  }

  private void endLine(byte[] a, int start, int end) {
    boolean empty = lineLength == 0 || (lineLength == 1 && lastByteCr);
    if (empty) {
      if (eventHasData) {
        events++;
        if (firstToken && eventHasOutput) {
          outputEvents++;
        }
        if (eventIsToken) {
          tokenEvents++;
        }
      }
      eventHasData = false;
      eventHasOutput = false;
      eventIsToken = false;
      prevLineEmpty = true;
    } else {
      prevLineEmpty = false;
      if (lineIsData && lineLength >= DATA.length) {
        eventHasData = true;
        eventHasOutput = !isDone(a, start, end);
        if (eventHasOutput && (!firstToken || classifyAll)) {
          byte[] src;
          int s;
          int e;
          if (lineCopied > 0) {
            copy(a, start, end);
            src = line;
            s = 0;
            e = lineCopied;
          } else {
            src = a;
            s = start;
            e = end;
          }
          s += DATA.length;
          if (s < e && src[s] == ' ') {
            s++;
          }
          if (e > s && src[e - 1] == '\r') {
            e--;
          }
          if (lineTooLong || TokenDetector.carriesOutput(src, s, e - s)) {
            firstToken = true;
            eventIsToken = true;
          } else if (!firstToken) {
            eventHasOutput = false;
          }
        }
      }
    }
    lineLength = 0;
    lineIsData = false;
    lastByteCr = false;
    lineCopied = 0;
    lineTooLong = false;
  }

  private void copy(byte[] a, int from, int to) {
    int n = to - from;
    if (lineCopied + n > MAX_LINE) {
      lineTooLong = true; // its start is kept, no more: a line that never ends holds no more memory
      n = MAX_LINE - lineCopied;
      if (n <= 0) {
        return;
      }
    }
    if (line == null) {
      line = new byte[Math.max(256, n)];
    } else if (lineCopied + n > line.length) {
      line = Arrays.copyOf(line, Math.min(MAX_LINE, Math.max(line.length * 2, lineCopied + n)));
    }
    System.arraycopy(a, from, line, lineCopied, n);
    lineCopied += n;
  }

  public boolean firstTokenSeen() {
    return firstToken;
  }

  /** True when the bytes so far end exactly after a complete SSE event (or there are none). */
  public boolean atEventBoundary() {
    return lineLength == 0 && prevLineEmpty;
  }

  /** Complete SSE events with a data line. */
  public int events() {
    return events;
  }

  /**
   * Complete SSE events carrying generated output, the first token's included; counted only by a
   * scanner from {@link #sseCountingTokens()}, else 0 after the first token's.
   */
  public int tokenEvents() {
    return tokenEvents;
  }

  /** Complete SSE events after the first token that carried data (for wasted-token estimates). */
  public int outputEvents() {
    return outputEvents;
  }

  public long bytes() {
    return bytes;
  }

  public Usage usage() {
    return usage.usage();
  }
}
