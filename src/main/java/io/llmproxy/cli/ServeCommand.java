package io.llmproxy.cli;

import static io.llmproxy.api.Throwables.rootMessage;

import io.llmproxy.config.ConfigException;
import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.server.Gateway;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import sun.misc.Signal;
import sun.misc.SignalHandler;
import picocli.CommandLine.Option;

/** {@code llmproxy serve --config config.yaml}: runs the gateway until SIGTERM or SIGINT; SIGHUP reloads the config. */
@Command(name = "serve", mixinStandardHelpOptions = true, description = "Run the gateway.")
public final class ServeCommand implements Callable<Integer> {
  private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);

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
    // The hook is in place before the gateway starts, so a SIGTERM during startup also stops it.
    CompletableFuture<Gateway> started = new CompletableFuture<>();
    Termination termination = Termination.install(() -> {
      Gateway g = started.getNow(null);
      if (g != null) {
        // up to the drain time for requests, then as long again for the webhook's spool
        g.shutdown(cfg.drainTimeout()).toCompletionStage().toCompletableFuture()
            .get(2 * cfg.drainTimeout().toMillis() + 10_000, TimeUnit.MILLISECONDS);
      }
    });
    exitZeroOnTerm();
    reloadOnHangup(started); // before the start too: a SIGHUP then would stop the JVM
    Gateway gateway;
    try {
      gateway = Gateway.start(cfg).toCompletionStage().toCompletableFuture().get();
    } catch (Exception e) {
      System.err.println("llmproxy could not start: " + rootMessage(e));
      started.complete(null);
      return 1;
    }
    gateway.configFile(config);
    gateway.logLevelSetter(LoggingSetup::level);
    started.complete(gateway);
    termination.await();
    return 0;
  }

  /**
   * SIGTERM stops the gateway through the shutdown hook as before (drain, then exit), but with exit
   * status 0: a stop that was asked for is not a failure. By default the JVM exits 143, which systemd
   * counts as one unless told {@code SuccessExitStatus=143}.
   */
  static void exitZeroOnTerm() {
    try {
      Signal.handle(new Signal("TERM"), sig -> System.exit(0));
    } catch (IllegalArgumentException e) {
      // not handled here: the JVM's own handling (exit 143) stays
    }
  }

  /**
   * SIGHUP reads the config file again (SPEC §2) instead of stopping the JVM, as it would by default.
   * The gateway logs what the reload did, or the file's problems, and runs on. A SIGHUP that comes
   * while the gateway starts is applied once it has started.
   */
  static void reloadOnHangup(CompletableFuture<Gateway> started) {
    SignalHandler previous;
    try {
      previous = Signal.handle(new Signal("HUP"), sig -> started.thenAcceptAsync(g -> {
        if (g == null) {
          return; // the start failed
        }
        try {
          g.reload();
        } catch (ConfigException e) {
          // the gateway logged each problem
        } catch (IllegalStateException e) {
          LOG.warn("SIGHUP: {}", e.getMessage());
        } catch (RuntimeException e) {
          LOG.error("SIGHUP: the config reload failed", e);
        }
      }));
    } catch (IllegalArgumentException e) {
      LOG.warn("SIGHUP cannot be handled here ({}): reload the config with POST /admin/reload", e.getMessage());
      return;
    }
    if (previous == SignalHandler.SIG_IGN) {
      // The JVM was started with SIGHUP ignored (nohup, some supervisors): HotSpot then keeps it so
      // and installs nothing.
      LOG.warn("SIGHUP is ignored in this process (started under nohup?): reload the config with POST /admin/reload");
    }
  }

  /** Something to run when the JVM is asked to stop. */
  interface Stopper {
    void stop() throws Exception;
  }

  /**
   * A JVM shutdown hook (SIGTERM, SIGINT) that runs a stopper, then flushes the logs, and lets the
   * main thread wait for it.
   */
  static final class Termination {
    private final CountDownLatch stopped = new CountDownLatch(1);

    static Termination install(Stopper stopper) {
      Termination t = new Termination();
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        try {
          stopper.stop();
        } catch (Exception e) {
          System.err.println("llmproxy did not stop cleanly: " + rootMessage(e));
        } finally {
          LoggingSetup.stop();
          t.stopped.countDown();
        }
      }, "llmproxy-shutdown"));
      return t;
    }

    /** Blocks until the hook has run. */
    void await() {
      try {
        stopped.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
