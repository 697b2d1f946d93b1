package io.llmproxy.proxy;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.io.JsonStringEncoder;
import io.netty.buffer.ByteBuf;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * A client's JSON request body, of which only {@code model} and {@code stream} are read. The bytes
 * go upstream unchanged, except that {@link #withModel} splices in a mapped model name in place of
 * the original string token, leaving every other byte as it was.
 */
public final class RequestBody {
  private static final JsonFactory JSON = JsonFactory.builder()
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .build();

  private final Buffer raw;
  private final String model;
  private final boolean stream;
  private final int modelStart;
  private final int modelEnd;
  /** {@code stream_options.include_usage} is true. */
  private final boolean includeUsage;
  /** Where {@code "include_usage":true} goes: after the {@code stream_options} object's '{', or -1. */
  private final int streamOptionsOpen;
  /** The offsets of a {@code null} value of {@code stream_options}, or -1. */
  private final int streamOptionsNullStart;
  private final int streamOptionsNullEnd;
  /** The offsets of a {@code false} or {@code null} value of {@code include_usage}, or -1. */
  private final int includeUsageStart;
  private final int includeUsageEnd;
  /** The offset of the top-level object's closing '}'. */
  private final int objectEnd;

  private RequestBody(Buffer raw, String model, boolean stream, int modelStart, int modelEnd, boolean includeUsage,
      int streamOptionsOpen, int streamOptionsNullStart, int streamOptionsNullEnd, int includeUsageStart,
      int includeUsageEnd, int objectEnd) {
    this.raw = raw;
    this.model = model;
    this.stream = stream;
    this.modelStart = modelStart;
    this.modelEnd = modelEnd;
    this.includeUsage = includeUsage;
    this.streamOptionsOpen = streamOptionsOpen;
    this.streamOptionsNullStart = streamOptionsNullStart;
    this.streamOptionsNullEnd = streamOptionsNullEnd;
    this.includeUsageStart = includeUsageStart;
    this.includeUsageEnd = includeUsageEnd;
    this.objectEnd = objectEnd;
  }

  /** Why a body could not be used; the message is for the client. */
  public static final class InvalidBodyException extends Exception {
    private final String param;

    InvalidBodyException(String message, String param) {
      super(message, null, false, false);
      this.param = param;
    }

    /** The offending field, or null. */
    public String param() {
      return param;
    }
  }

  /**
   * Whether the body starts the way JSON in UTF-16 or UTF-32 does (the cases Jackson detects): a
   * byte-order mark of either, or a zero byte among the first four. JSON in UTF-8 has neither: a
   * zero byte can only appear escaped.
   */
  private static boolean notUtf8(byte[] a, int off, int len) {
    if (len >= 2) {
      byte b0 = a[off];
      byte b1 = a[off + 1];
      if ((b0 == (byte) 0xFE && b1 == (byte) 0xFF) || (b0 == (byte) 0xFF && b1 == (byte) 0xFE)) {
        return true;
      }
    }
    for (int i = off, end = off + Math.min(len, 4); i < end; i++) {
      if (a[i] == 0) {
        return true;
      }
    }
    return false;
  }

  /**
   * Reads the whole body to check it is one JSON object, and takes {@code model} and {@code stream}
   * from its top level.
   */
  public static RequestBody parse(Buffer body) throws InvalidBodyException {
    ByteBuf bb = ((BufferInternal) body).getByteBuf();
    byte[] a;
    int off;
    int len = bb.readableBytes();
    if (bb.hasArray()) {
      a = bb.array();
      off = bb.arrayOffset() + bb.readerIndex();
    } else {
      a = body.getBytes();
      off = 0;
    }
    String model = null;
    boolean stream = false;
    int start = -1;
    int end = -1;
    boolean includeUsage = false;
    int optionsOpen = -1;
    int optionsNullStart = -1;
    int optionsNullEnd = -1;
    int usageStart = -1;
    int usageEnd = -1;
    int objectEnd;
    if (notUtf8(a, off, len)) {
      // Jackson would read it through a character decoder, which reports no byte offsets: the model
      // could not be mapped in place.
      throw new InvalidBodyException(
          "The request body must be JSON in UTF-8 (RFC 8259 §8.1), not UTF-16 or UTF-32.", null);
    }
    // Jackson's byte offsets are relative to the start of the parsed range, not to the array.
    try (JsonParser p = JSON.createParser(a, off, len)) {
      if (p.nextToken() != JsonToken.START_OBJECT) {
        throw new InvalidBodyException("The request body must be a JSON object.", null);
      }
      JsonToken t;
      while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
        String name = p.currentName();
        JsonToken v = p.nextToken();
        if ("model".equals(name)) {
          if (v == JsonToken.VALUE_STRING) {
            start = (int) p.currentTokenLocation().getByteOffset();
            model = p.getText();
            end = (int) p.currentLocation().getByteOffset();
          } else if (v != JsonToken.VALUE_NULL) {
            throw new InvalidBodyException("'model' must be a string.", "model");
          }
        } else if ("stream".equals(name)) {
          if (v == JsonToken.VALUE_TRUE || v == JsonToken.VALUE_FALSE) {
            stream = v == JsonToken.VALUE_TRUE;
          } else if (v != JsonToken.VALUE_NULL) {
            throw new InvalidBodyException("'stream' must be a boolean.", "stream");
          }
        } else if ("stream_options".equals(name) && v == JsonToken.START_OBJECT) {
          optionsOpen = (int) p.currentLocation().getByteOffset();
          JsonToken o;
          while ((o = p.nextToken()) == JsonToken.FIELD_NAME) {
            String option = p.currentName();
            JsonToken ov = p.nextToken();
            if ("include_usage".equals(option)) {
              includeUsage = ov == JsonToken.VALUE_TRUE;
              if (ov == JsonToken.VALUE_FALSE || ov == JsonToken.VALUE_NULL) {
                usageStart = (int) p.currentTokenLocation().getByteOffset();
                usageEnd = (int) p.currentLocation().getByteOffset();
              }
            }
            p.skipChildren();
          }
          if (o != JsonToken.END_OBJECT) {
            throw new InvalidBodyException("The request body is not valid JSON.", null);
          }
        } else if ("stream_options".equals(name) && v == JsonToken.VALUE_NULL) {
          optionsNullStart = (int) p.currentTokenLocation().getByteOffset();
          optionsNullEnd = (int) p.currentLocation().getByteOffset();
        } else {
          p.skipChildren();
        }
      }
      if (t != JsonToken.END_OBJECT) {
        throw new InvalidBodyException("The request body is not valid JSON.", null);
      }
      objectEnd = (int) p.currentTokenLocation().getByteOffset();
      if (p.nextToken() != null) {
        throw new InvalidBodyException("The request body has data after the JSON object.", null);
      }
    } catch (JsonProcessingException e) {
      throw new InvalidBodyException("The request body is not valid JSON: " + e.getOriginalMessage(), null);
    } catch (IOException e) {
      throw new InvalidBodyException("The request body could not be read.", null);
    }
    return new RequestBody(body, model, stream, start, end, includeUsage, optionsOpen, optionsNullStart, optionsNullEnd,
        usageStart, usageEnd, objectEnd);
  }

  /** A body that is not parsed (not JSON, or a route that does not need a model). */
  public static RequestBody opaque(Buffer body) {
    return new RequestBody(body, null, false, -1, -1, false, -1, -1, -1, -1, -1, -1);
  }

  /** The client asked for usage in its stream ({@code stream_options.include_usage: true}). */
  public boolean includeUsage() {
    return includeUsage;
  }

  /** The top-level {@code model}, or null. */
  public String model() {
    return model;
  }

  /** The top-level {@code stream}; false when absent. */
  public boolean stream() {
    return stream;
  }

  public Buffer raw() {
    return raw;
  }

  /** The body with {@code model} replaced, every other byte unchanged. */
  public Buffer withModel(String newModel) {
    return rewrite(newModel, false);
  }

  /**
   * The body with {@code model} replaced (when {@code newModel} is not null and differs) and, when
   * {@code askUsage}, {@code stream_options.include_usage} set to true (SPEC §5: the gateway asks the
   * backend for a stream's usage). Every other byte is unchanged.
   */
  public Buffer rewrite(String newModel, boolean askUsage) {
    byte[] modelBytes = null;
    if (newModel != null && modelStart >= 0 && !newModel.equals(model)) {
      byte[] quoted = JsonStringEncoder.getInstance().quoteAsUTF8(newModel);
      modelBytes = new byte[quoted.length + 2];
      modelBytes[0] = '"';
      System.arraycopy(quoted, 0, modelBytes, 1, quoted.length);
      modelBytes[modelBytes.length - 1] = '"';
    }
    int usageAt = -1;
    int usageUntil = -1;
    byte[] usageBytes = null;
    if (askUsage && !includeUsage && objectEnd > 0) {
      if (includeUsageStart >= 0) {
        usageAt = includeUsageStart;
        usageUntil = includeUsageEnd;
        usageBytes = "true".getBytes(StandardCharsets.US_ASCII);
      } else if (streamOptionsOpen >= 0) {
        usageAt = usageUntil = streamOptionsOpen;
        boolean empty = nextNonSpace(streamOptionsOpen) == '}';
        usageBytes = (empty ? "\"include_usage\":true" : "\"include_usage\":true,").getBytes(StandardCharsets.US_ASCII);
      } else if (streamOptionsNullStart >= 0) {
        usageAt = streamOptionsNullStart;
        usageUntil = streamOptionsNullEnd;
        usageBytes = "{\"include_usage\":true}".getBytes(StandardCharsets.US_ASCII);
      } else {
        usageAt = usageUntil = objectEnd;
        boolean empty = previousNonSpace(objectEnd) == '{';
        usageBytes = (empty ? "\"stream_options\":{\"include_usage\":true}"
            : ",\"stream_options\":{\"include_usage\":true}").getBytes(StandardCharsets.US_ASCII);
      }
    }
    if (modelBytes == null && usageBytes == null) {
      return raw;
    }
    Buffer out = Buffer.buffer(raw.length() + 64 + (modelBytes == null ? 0 : modelBytes.length));
    int pos = 0;
    // the two splices, in the order they appear in the body (they never overlap)
    boolean modelFirst = modelBytes != null && (usageBytes == null || modelStart < usageAt);
    if (modelFirst) {
      pos = splice(out, pos, modelStart, modelEnd, modelBytes);
    }
    if (usageBytes != null) {
      pos = splice(out, pos, usageAt, usageUntil, usageBytes);
    }
    if (modelBytes != null && !modelFirst) {
      pos = splice(out, pos, modelStart, modelEnd, modelBytes);
    }
    out.appendBuffer(raw, pos, raw.length() - pos);
    return out;
  }

  private int splice(Buffer out, int pos, int from, int to, byte[] with) {
    out.appendBuffer(raw, pos, from - pos);
    out.appendBytes(with);
    return to;
  }

  private byte nextNonSpace(int i) {
    while (i < raw.length() && isSpace(raw.getByte(i))) {
      i++;
    }
    return i < raw.length() ? raw.getByte(i) : 0;
  }

  private byte previousNonSpace(int i) {
    i--;
    while (i >= 0 && isSpace(raw.getByte(i))) {
      i--;
    }
    return i >= 0 ? raw.getByte(i) : 0;
  }

  private static boolean isSpace(byte b) {
    return b == ' ' || b == '\n' || b == '\r' || b == '\t';
  }
}
