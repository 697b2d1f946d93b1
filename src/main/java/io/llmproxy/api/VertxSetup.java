package io.llmproxy.api;

import io.vertx.core.VertxOptions;
import io.vertx.core.file.FileSystemOptions;

/** The options every Vert.x instance of llmproxy (gateway, simulator, load generator, demo) starts from. */
public final class VertxSetup {
  private VertxSetup() {}

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
