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

  private RequestBody(Buffer raw, String model, boolean stream, int modelStart, int modelEnd) {
    this.raw = raw;
    this.model = model;
    this.stream = stream;
    this.modelStart = modelStart;
    this.modelEnd = modelEnd;
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
            start = (int) p.currentTokenLocation().getByteOffset() - off;
            model = p.getText();
            end = (int) p.currentLocation().getByteOffset() - off;
          } else if (v != JsonToken.VALUE_NULL) {
            throw new InvalidBodyException("'model' must be a string.", "model");
          }
        } else if ("stream".equals(name)) {
          if (v == JsonToken.VALUE_TRUE || v == JsonToken.VALUE_FALSE) {
            stream = v == JsonToken.VALUE_TRUE;
          } else if (v != JsonToken.VALUE_NULL) {
            throw new InvalidBodyException("'stream' must be a boolean.", "stream");
          }
        } else {
          p.skipChildren();
        }
      }
      if (t != JsonToken.END_OBJECT) {
        throw new InvalidBodyException("The request body is not valid JSON.", null);
      }
      if (p.nextToken() != null) {
        throw new InvalidBodyException("The request body has data after the JSON object.", null);
      }
    } catch (JsonProcessingException e) {
      throw new InvalidBodyException("The request body is not valid JSON: " + e.getOriginalMessage(), null);
    } catch (IOException e) {
      throw new InvalidBodyException("The request body could not be read.", null);
    }
    return new RequestBody(body, model, stream, start, end);
  }

  /** A body that is not parsed (not JSON, or a route that does not need a model). */
  public static RequestBody opaque(Buffer body) {
    return new RequestBody(body, null, false, -1, -1);
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
    if (modelStart < 0 || newModel.equals(model)) {
      return raw;
    }
    byte[] quoted = JsonStringEncoder.getInstance().quoteAsUTF8(newModel);
    Buffer out = Buffer.buffer(raw.length() - (modelEnd - modelStart) + quoted.length + 2);
    out.appendBuffer(raw, 0, modelStart);
    out.appendByte((byte) '"').appendBytes(quoted).appendByte((byte) '"');
    out.appendBuffer(raw, modelEnd, raw.length() - modelEnd);
    return out;
  }
}
