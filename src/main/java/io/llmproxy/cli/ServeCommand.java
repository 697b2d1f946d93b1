package io.llmproxy.cli;

import io.llmproxy.config.ConfigException;
import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.server.Gateway;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code llmproxy serve --config config.yaml}: runs the gateway until SIGTERM or SIGINT. */
@Command(name = "serve", mixinStandardHelpOptions = true, description = "Run the gateway.")
public final class ServeCommand implements Callable<Integer> {

  @Option(names = {"-c", "--config"}, description = "Config file (default: ${DEFAULT-VALUE}).",
      defaultValue = "config.yaml")
  Path config;

  public ServeCommand() {}

  ServeCommand(Path config) {
    this.config = config;
  }

  @Override
  public Integer call() {
    GatewayConfig cfg;
    try {
      cfg = ConfigLoader.load(config);
    } catch (ConfigException e) {
      for (String p : e.problems()) {
        System.err.println(config + ": " + p);
      }
      return 1;
    }
    LoggingSetup.apply(cfg.logging());
    Gateway gateway;
    try {
      gateway = Gateway.start(cfg).toCompletionStage().toCompletableFuture().get();
    } catch (Exception e) {
      System.err.println("llmproxy could not start: " + rootMessage(e));
      LoggingSetup.stop();
      return 1;
    }
    awaitTermination(() -> gateway.shutdown(cfg.drainTimeout()).toCompletionStage().toCompletableFuture()
        .get(cfg.drainTimeout().toMillis() + 10_000, TimeUnit.MILLISECONDS));
    return 0;
  }

  /** Something to run when the JVM is asked to stop. */
  interface Stopper {
    void stop() throws Exception;
  }

  /**
   * Blocks until SIGTERM or SIGINT; the shutdown hook runs {@code stopper} (the graceful drain),
   * then flushes the logs.
   */
  static void awaitTermination(Stopper stopper) {
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        stopper.stop();
      } catch (Exception e) {
        System.err.println("llmproxy did not stop cleanly: " + rootMessage(e));
      } finally {
        LoggingSetup.stop();
        stopped.countDown();
      }
    }, "llmproxy-shutdown"));
    try {
      stopped.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  static String rootMessage(Throwable t) {
    Throwable c = t;
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
    }
    return c.getMessage() == null ? c.toString() : c.getMessage();
  }
}
