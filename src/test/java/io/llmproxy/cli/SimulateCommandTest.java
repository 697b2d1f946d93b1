package io.llmproxy.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.sim.SimulatorOptions;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class SimulateCommandTest {

  private static SimulatorOptions parse(String... args) {
    SimulateCommand command = new SimulateCommand();
    new CommandLine(command).parseArgs(args);
    return command.options();
  }

  @Test
  void defaults() {
    SimulatorOptions o = parse();

    assertThat(o.host()).isEqualTo("127.0.0.1");
    assertThat(o.port()).isEqualTo(8000);
    assertThat(o.name()).isEqualTo("sim");
    assertThat(o.ttft()).isEqualTo(Duration.ofMillis(200));
    assertThat(o.itl()).isEqualTo(Duration.ofMillis(20));
    assertThat(o.tokens()).isEqualTo(16);
    assertThat(o.models()).containsExactly("sim-model");
    assertThat(o.healthy()).isTrue();
    assertThat(o.earlyHeaders()).isFalse();
  }

  @Test
  void everyOption() {
    SimulatorOptions o = parse("--host", "0.0.0.0", "--port", "9001", "--name", "slow",
        "--ttft", "2s", "--itl", "35", "--tokens", "64", "--jitter", "5ms", "--tail-prob", "0.05",
        "--tail-ms", "3000", "--fail-rate", "0.1", "--fail-status", "429", "--hang-rate", "0.01",
        "--early-headers", "--models", "a,b", "--strict-models", "--unhealthy");

    assertThat(o).isEqualTo(new SimulatorOptions("slow", "0.0.0.0", 9001, Duration.ofSeconds(2),
        Duration.ofMillis(35), 64, Duration.ofMillis(5), 0.05, Duration.ofMillis(3000), 0.1, 429,
        0.01, true, List.of("a", "b"), true, false, 10_000));
  }

  @Test
  void badDurationIsAParameterError() {
    int code = new CommandLine(new SimulateCommand())
        .setErr(new java.io.PrintWriter(java.io.Writer.nullWriter()))
        .execute("--ttft", "fast");

    assertThat(code).isEqualTo(2);
  }
}
