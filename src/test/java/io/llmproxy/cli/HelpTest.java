package io.llmproxy.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Every command's help renders as written: picocli reads descriptions as format strings. */
class HelpTest {

  @Test
  void everyCommandsHelpRendersWithoutWarnings() {
    CommandLine main = new CommandLine(new Main());
    PrintStream original = System.err;
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      assertHelp(main);
      for (CommandLine sub : main.getSubcommands().values()) {
        assertHelp(sub);
      }
    } finally {
      System.setErr(original);
    }
    assertThat(err.toString(StandardCharsets.UTF_8)).as("picocli's warnings").isEmpty();
  }

  private static void assertHelp(CommandLine command) {
    String usage = command.getUsageMessage(CommandLine.Help.Ansi.OFF);
    assertThat(usage).as(command.getCommandName()).startsWith("Usage: ").doesNotContain("%n");
  }
}
