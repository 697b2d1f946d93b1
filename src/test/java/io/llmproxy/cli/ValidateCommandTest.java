package io.llmproxy.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ValidateCommandTest {

  @TempDir
  Path dir;

  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int run(String... args) {
    CommandLine cli = new CommandLine(new ValidateCommand());
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    return cli.execute(args);
  }

  private Path write(String name, String yaml) throws IOException {
    Path file = dir.resolve(name);
    Files.writeString(file, yaml);
    return file;
  }

  @Test
  void validConfigPrintsASummaryAndExitsZero() throws IOException {
    Path file = write("config.yaml", """
        listen: "127.0.0.1:9000"
        backends:
          - url: http://a:1
          - url: http://b:1
        load_balance_strategy: latency-based
        """);
    assertThat(run("--config", file.toString())).isZero();
    assertThat(out.toString()).isEqualTo("config OK: 2 backends, strategy latency_based, listen 127.0.0.1:9000"
        + System.lineSeparator());
    assertThat(err.toString()).isEmpty();
  }

  @Test
  void whatTheGatewayWouldWarnAboutAtStartIsSaidToo() throws IOException {
    Path file = write("warn.yaml", """
        backends: [{url: "http://a:1"}]
        rate_limit: {enabled: true, storage: redis}
        api_keys:
          - {key: "sk-test-1234567890", name: team}
        """);
    assertThat(run("-c", file.toString())).isZero();
    assertThat(out.toString().lines()).containsExactly(
        "config OK: 1 backend, strategy weighted_round_robin, listen 0.0.0.0:8080",
        "warning: api_keys are listed but auth.enabled is false: every request is let in without a key",
        "warning: rate_limit.storage: redis is not supported yet; each gateway limits on its own (memory)");
  }

  @Test
  void shortOptionAndSingularBackend() throws IOException {
    Path file = write("one.yaml", "backends: [{url: \"http://a:1\"}]\n");
    assertThat(run("-c", file.toString())).isZero();
    assertThat(out.toString()).startsWith("config OK: 1 backend, strategy weighted_round_robin, listen 0.0.0.0:8080");
  }

  @Test
  void problemsGoToStderrOnePerLinePrefixedWithTheFile() throws IOException {
    Path file = write("bad.yaml", """
        backends:
          - url: http://a:1
          - url: http://b:1
          - url: gpu-3
        routing:
          retry: {max_retry: 1}
        """);
    assertThat(run("--config", file.toString())).isEqualTo(1);
    assertThat(out.toString()).isEmpty();
    assertThat(err.toString().lines()).containsExactly(
        file + ": backends[2].url: must be an absolute http:// or https:// URL, like http://gpu-1:8000",
        file + ": routing.retry.max_retry: unknown key; did you mean 'max_retries'?");
  }

  @Test
  void anUnreadableFileExitsTwo() {
    Path missing = dir.resolve("missing.yaml");
    assertThat(run("--config", missing.toString())).isEqualTo(2);
    assertThat(err.toString().lines()).containsExactly(missing + ": cannot read the file: no such file");
  }

  @Test
  void theDefaultFileIsConfigYamlInTheWorkingDirectory() {
    CommandLine.Model.OptionSpec option = new CommandLine(new ValidateCommand()).getCommandSpec().findOption("-c");
    assertThat(option.defaultValue()).isEqualTo("config.yaml");
    assertThat(option.longestName()).isEqualTo("--config");
  }

  @Test
  void theExampleAtTheRepositoryRootValidates() {
    assertThat(run("-c", "config.yaml.example")).as(err.toString()).isZero();
  }

  @Test
  void helpDescribesTheExitCodes() {
    assertThat(run("--help")).isZero();
    assertThat(out.toString()).contains("validate", "--config=<file>", "1   the config has problems");
  }

  /** {@code llmproxy -c FILE validate}: the option before the subcommand is the subcommand's. */
  @Test
  void theConfigOptionBeforeTheSubcommandIsTheSubcommands() throws IOException {
    Path file = write("prod.yaml", "listen: \"127.0.0.1:9001\"\nbackends: [{url: \"http://a:1\"}]\n");
    CommandLine cli = Main.commandLine();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    cli.getSubcommands().values().forEach(c -> {
      c.setOut(new PrintWriter(out, true));
      c.setErr(new PrintWriter(err, true));
    });
    assertThat(cli.execute("-c", file.toString(), "validate")).isZero();
    assertThat(out.toString()).contains("listen 127.0.0.1:9001");

    assertThat(cli.execute("-c", file.toString(), "validate", "-c", file.toString())).isEqualTo(2);
    assertThat(err.toString()).contains("--config is given twice");
    assertThat(cli.execute("-c", file.toString(), "simulate")).isEqualTo(2);
    assertThat(err.toString()).contains("--config does not apply to `llmproxy simulate`");
  }
}
