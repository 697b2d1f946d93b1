package io.llmproxy.api;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VertxSetupTest {
  @Test
  void aVertxStartedFromTheSharedOptionsLeavesNoCacheDirectoryBehind(@TempDir Path base) throws Exception {
    VertxOptions options = VertxSetup.options(1);
    options.getFileSystemOptions().setFileCacheDir(base.resolve("vertx-cache").toString()); // Vert.x adds -<uuid>
    Vertx vertx = Vertx.vertx(options);
    try {
      vertx.fileSystem().existsBlocking("config.yaml");
      assertThat(entries(base)).isEmpty();
    } finally {
      vertx.close().await(10, TimeUnit.SECONDS);
    }
  }

  /** The control: Vert.x's defaults do create one while running, which a killed process leaves behind. */
  @Test
  void vertxsDefaultsCreateOne(@TempDir Path base) throws Exception {
    VertxOptions options = new VertxOptions().setEventLoopPoolSize(1);
    options.getFileSystemOptions().setFileCacheDir(base.resolve("vertx-cache").toString()); // Vert.x adds -<uuid>
    Vertx vertx = Vertx.vertx(options);
    try {
      assertThat(entries(base)).singleElement().asString().contains("vertx-cache-");
    } finally {
      vertx.close().await(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void theLoopCountIsTheOneAskedFor() {
    assertThat(VertxSetup.options(3).getEventLoopPoolSize()).isEqualTo(3);
  }

  private static List<Path> entries(Path dir) throws Exception {
    try (Stream<Path> s = Files.list(dir)) {
      return s.toList();
    }
  }
}
