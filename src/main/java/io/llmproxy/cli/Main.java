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
    int code = commandLine().execute(args);
    if (code != 0) {
      System.exit(code);
    }
  }

  /**
   * The command line. A {@code --config} written before a subcommand ({@code llmproxy -c prod.yaml
   * validate}) is that subcommand's: it was ignored, and the subcommand read ./config.yaml instead.
   * One the subcommand has no use for, or a second one, is an error.
   */
  static CommandLine commandLine() {
    CommandLine cli = new CommandLine(new Main());
    cli.setExecutionStrategy(parsed -> {
      CommandLine.ParseResult sub = parsed.subcommand();
      if (sub != null && parsed.hasMatchedOption("--config")) {
        String name = sub.commandSpec().name();
        CommandLine.Model.OptionSpec own = sub.commandSpec().findOption("--config");
        if (own == null) {
          throw new CommandLine.ParameterException(sub.commandSpec().commandLine(),
              "--config does not apply to `llmproxy " + name + "`");
        }
        if (sub.hasMatchedOption("--config")) {
          throw new CommandLine.ParameterException(sub.commandSpec().commandLine(),
              "--config is given twice, before and after `" + name + "`");
        }
        own.setValue(parsed.matchedOptionValue("--config", (Path) null));
      }
      return new CommandLine.RunLast().execute(parsed);
    });
    return cli;
  }
}
