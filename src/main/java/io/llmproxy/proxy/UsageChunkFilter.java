package io.llmproxy.proxy;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;

/**
 * Removes the usage-only chunk ({@code "choices":[]} with a {@code usage} object) from an SSE stream,
 * for a client that did not ask for usage when the gateway asked the backend for it (SPEC §5). Every
 * other byte passes unchanged, each event as soon as its end has arrived: only the bytes of an event
 * whose end is still to come are held, and backends send whole events, so in practice nothing waits.
 * Only an event with a non-null {@code "usage"} object is parsed.
 */
public final class UsageChunkFilter {
  private static final JsonFactory JSON = new JsonFactory();
  private static final byte[] USAGE = {'"', 'u', 's', 'a', 'g', 'e', '"'};

  /** The most of one event held while its end has not arrived. */
  static final int MAX_HELD = 16 * 1024;

  /** The current event was longer than {@link #MAX_HELD}: its bytes pass until its end. */
  private boolean passing;
  /** Bytes of the event whose end has not arrived yet. */
  private Buffer pending;
  /** The line feeds and carriage returns just before the scan position (a blank line ends an event). */
  private int newlines;
  private boolean lastWasCr;
  /**
   * The last event ended with the CR of a CRLF CRLF at the very end of a chunk: its LF may still
   * come, at the start of the next chunk, and belongs to that event (and goes or stays with it).
   */
  private boolean lfOwedByLast;
  private boolean lastRemoved;
  private int removed;

  /** What of {@code chunk} may go to the client now, in order; may be empty. */
  public Buffer filter(Buffer chunk) {
    Buffer data = chunk;
    int scanFrom = 0;
    if (pending != null) {
      scanFrom = pending.length();
      data = pending.appendBuffer(chunk);
      pending = null;
    }
    Buffer out = null; // null while nothing was removed: the output is then data[0, lastEnd)
    int eventStart = 0;
    int len = data.length();
    if (lfOwedByLast && len > 0) {
      lfOwedByLast = false;
      if (data.getByte(0) == '\n') {
        lastWasCr = false;
        eventStart = scanFrom = 1;
        if (lastRemoved) {
          out = Buffer.buffer(len);
        }
      }
    }
    for (int i = scanFrom; i < len; i++) {
      byte b = data.getByte(i);
      if (b == '\n') {
        if (!lastWasCr) {
          newlines++;
        }
        lastWasCr = false;
      } else if (b == '\r') {
        newlines++;
        lastWasCr = true;
      } else {
        newlines = 0;
        lastWasCr = false;
        continue;
      }
      if (newlines < 2) {
        continue;
      }
      newlines = 0;
      if (b == '\r' && i + 1 < len && data.getByte(i + 1) == '\n') {
        i++; // CRLF CRLF: the event ends after the last LF
        lastWasCr = false;
      }
      int end = i + 1;
      lfOwedByLast = end == len && data.getByte(i) == '\r';
      lastRemoved = !passing && isUsageOnly(data, eventStart, end);
      passing = false;
      if (lastRemoved) {
        removed++;
        if (out == null) {
          out = Buffer.buffer(len).appendBuffer(data, 0, eventStart);
        }
      } else if (out != null) {
        out.appendBuffer(data, eventStart, end - eventStart);
      }
      eventStart = end;
    }
    int held = eventStart;
    if (held < len && (passing || len - held > MAX_HELD)) {
      // An event this long is no usage chunk (those are under 1 KiB): it goes out as it comes.
      passing = true;
      held = len;
    }
    if (held < len) {
      pending = Buffer.buffer(Math.max(256, len - held)).appendBuffer(data, held, len - held);
    }
    if (out != null) {
      return held > eventStart ? out.appendBuffer(data, eventStart, held - eventStart) : out;
    }
    return held == len ? data : data.getBuffer(0, held);
  }

  /** The bytes held for an event whose end never came (the stream ended); nothing held after. */
  public Buffer rest() {
    Buffer p = pending;
    pending = null;
    if (p == null) {
      return Buffer.buffer(0);
    }
    if (!passing && isUsageOnly(p, 0, p.length())) {
      removed++; // the last event, its blank line never sent: it goes as the others do
      return Buffer.buffer(0);
    }
    return p;
  }

  /** Usage-only chunks removed so far. */
  public int removed() {
    return removed;
  }

  /** An event {@code data: {...,"choices":[],...,"usage":{...}}}. */
  static boolean isUsageOnly(Buffer data, int from, int to) {
    int u = indexOf(data, USAGE, from, to);
    if (u < 0) {
      return false;
    }
    int i = u + USAGE.length;
    while (i < to && isSpace(data.getByte(i))) {
      i++;
    }
    if (i >= to || data.getByte(i) != ':') {
      return false;
    }
    i++;
    while (i < to && isSpace(data.getByte(i))) {
      i++;
    }
    if (i >= to || data.getByte(i) != '{') {
      return false;
    }
    int brace = indexOf(data, new byte[] {'{'}, from, to);
    byte[] json = data.getBytes(brace, to);
    try (JsonParser p = JSON.createParser(json)) {
      if (p.nextToken() != JsonToken.START_OBJECT) {
        return false;
      }
      boolean emptyChoices = false;
      boolean usage = false;
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String name = p.currentName();
        JsonToken v = p.nextToken();
        if ("choices".equals(name)) {
          emptyChoices = v == JsonToken.START_ARRAY && p.nextToken() == JsonToken.END_ARRAY;
          if (!emptyChoices) {
            return false;
          }
        } else if ("usage".equals(name)) {
          usage = v == JsonToken.START_OBJECT;
          p.skipChildren();
        } else {
          p.skipChildren();
        }
      }
      return emptyChoices && usage;
    } catch (IOException e) {
      return false;
    }
  }

  private static int indexOf(Buffer data, byte[] what, int from, int to) {
    outer:
    for (int i = from; i <= to - what.length; i++) {
      for (int j = 0; j < what.length; j++) {
        if (data.getByte(i + j) != what[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  private static boolean isSpace(byte b) {
    return b == ' ' || b == '\t' || b == '\n' || b == '\r';
  }
}
