package io.llmproxy.cli;

import io.llmproxy.config.ConfigException;
import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.GatewayConfig;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code llmproxy validate --config config.yaml}: checks a config without starting anything.
 *
 * <p>Exit codes: 0 when the config is valid, 1 when it has problems (each printed on its own line to
 * stderr as {@code file: path: message}), 2 when the file cannot be read.
 */
@Command(
    name = "validate",
    description = "Checks a config file and names the path of each problem, without starting the gateway.",
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:the config is valid", "1:the config has problems", "2:the file cannot be read"})
public final class ValidateCommand implements Callable<Integer> {

  @Spec
  private CommandSpec spec;

  @Option(names = {"-c", "--config"}, paramLabel = "<file>", defaultValue = "config.yaml",
      description = "The config file (default: ${DEFAULT-VALUE}).")
  private Path config;

  @Option(names = {"-h", "--help"}, usageHelp = true, description = "Show this help and exit.")
  private boolean help;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    try {
      GatewayConfig loaded = ConfigLoader.load(config);
      out.println("config OK: " + loaded.backends().size()
          + (loaded.backends().size() == 1 ? " backend" : " backends")
          + ", strategy " + loaded.strategy().name().toLowerCase(Locale.ROOT)
          + ", listen " + loaded.listen());
      for (String warning : loaded.warnings()) {
        out.println("warning: " + warning);
      }
      out.flush();
      return 0;
    } catch (ConfigException e) {
      for (String problem : e.problems()) {
        err.println(config + ": " + problem);
      }
      err.flush();
      return e.getCause() instanceof IOException ? 2 : 1;
    }
  }
}
