package io.llmproxy.cli;

import io.llmproxy.api.VertxSetup;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code llmproxy}: the command line (SPEC §2). Without a subcommand it serves, like {@code serve}. */
@Command(
    name = "llmproxy",
    mixinStandardHelpOptions = true,
    versionProvider = Version.class,
    description = "High-performance gateway for self-hosted LLM inference servers.",
    subcommands = {ServeCommand.class, DemoCommand.class, SimulateCommand.class, ValidateCommand.class,
        BenchCommand.class})
public final class Main implements Callable<Integer> {

  @Option(names = {"-c", "--config"}, description = "Config file (default: ${DEFAULT-VALUE}).",
      defaultValue = "config.yaml")
  Path config;

  @Override
  public Integer call() {
    return new ServeCommand(config).call();
  }

  public static void main(String[] args) {
    VertxSetup.preferPooledAllocator();
    int code = new CommandLine(new Main()).execute(args);
    if (code != 0) {
      System.exit(code);
    }
  }
}
