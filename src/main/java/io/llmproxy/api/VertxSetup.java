package io.llmproxy.api;

import io.vertx.core.VertxOptions;
import io.vertx.core.file.FileSystemOptions;

/** The options every Vert.x instance of llmproxy (gateway, simulator, load generator, demo) starts from. */
public final class VertxSetup {
  /** Netty's system property that picks {@code ByteBufAllocator.DEFAULT}, which Vert.x allocates from. */
  public static final String ALLOCATOR_PROPERTY = "io.netty.allocator.type";

  private VertxSetup() {}

  /**
   * Netty's pooled allocator (size-classed arenas behind a cache on each event loop) instead of the
   * adaptive one that Netty 4.2 makes the default, unless {@code -Dio.netty.allocator.type} chooses.
   * Under non-streaming load the gateway spent 4.2 µs of CPU a request in Netty's buffer code with
   * the adaptive one (1.25 of it in the recycler it takes each buffer's object from), 2.0 with the
   * pooled one, and 12% less CPU a request in all (docs/BENCHMARKS.md). Netty reads the property
   * once, when its buffer classes load, so this runs first thing in {@code main}.
   */
  public static void preferPooledAllocator() {
    if (System.getProperty(ALLOCATOR_PROPERTY) == null) {
      System.setProperty(ALLOCATOR_PROPERTY, "pooled");
    }
  }

  /**
   * {@code eventLoops} event loops, and no class-path resolution of file names: llmproxy reads no file
   * through Vert.x, and with resolution on, each Vert.x instance creates a {@code vertx-cache-*}
   * directory in the temp directory, which a process killed with SIGKILL (an OOM kill, the end of a
   * Kubernetes grace period) leaves behind.
   */
  public static VertxOptions options(int eventLoops) {
    return new VertxOptions()
        .setEventLoopPoolSize(eventLoops)
        .setFileSystemOptions(new FileSystemOptions().setClassPathResolvingEnabled(false).setFileCachingEnabled(false));
  }
}
