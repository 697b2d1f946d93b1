package io.llmproxy.proxy;

import io.netty.buffer.ByteBuf;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.buffer.impl.BufferImpl;
import io.vertx.core.buffer.impl.VertxHeapByteBuf;
import io.vertx.core.buffer.impl.VertxUnsafeHeapByteBuf;

/**
 * The bytes under the Vert.x {@link Buffer}s a backend's body travels in. Vert.x's own accessor,
 * {@code BufferInternal.getByteBuf()}, hands out a new slice, and for a buffer that is not its own
 * heap buffer wraps it as unreleasable too: two objects for every look at every chunk.
 */
public final class Chunks {
  private Chunks() {}

  /** The buffer's own {@code ByteBuf}: not a copy and not a slice. Read it, or retain and release it. */
  public static ByteBuf bytes(Buffer chunk) {
    return ((BufferImpl) chunk).byteBuf();
  }

  /**
   * Whether the bytes are a pooled buffer, to be released (what {@link UpstreamConnection} hands on),
   * and not Vert.x's own heap buffer, which is never released.
   */
  public static boolean pooled(ByteBuf bytes) {
    return !(bytes instanceof VertxHeapByteBuf || bytes instanceof VertxUnsafeHeapByteBuf);
  }
}
