package io.llmproxy.config;

import static io.llmproxy.config.TestConfigs.problems;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {

  @TempDir
  Path dir;

  @Test
  void loadsAFile() throws IOException, ConfigException {
    Path file = dir.resolve("config.yaml");
    Files.writeString(file, "\uFEFF# with a byte order mark\nbackends:\n  - url: http://a:1\n    name: 甲\n");
    GatewayConfig config = ConfigLoader.load(file);
    assertThat(config.backends().get(0).name()).isEqualTo("甲");
  }

  @Test
  void aMissingFileIsAnIoProblem() {
    ConfigException e = catchThrowableOfType(ConfigException.class, () -> ConfigLoader.load(dir.resolve("nope.yaml")));
    assertThat(e.problems()).containsExactly("cannot read the file: no such file");
    assertThat(e.getCause()).isInstanceOf(IOException.class);
  }

  @Test
  void aFileThatIsNotUtf8IsAConfigProblem() throws IOException {
    Path file = dir.resolve("latin1.yaml");
    Files.write(file, "backends: [{url: http://a:1, name: caf\u00e9}]\n".getBytes(StandardCharsets.ISO_8859_1));
    ConfigException e = catchThrowableOfType(ConfigException.class, () -> ConfigLoader.load(file));
    assertThat(e.problems()).containsExactly("the file is not UTF-8 text");
    assertThat(e.getCause()).isNull();
  }

  @Test
  void mergeKeysTakeDefaultsFromAnAnchoredBackend() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        backends:
          - &gpu
            url: http://gpu-1:8000
            weight: 10
            models: &llama ["llama-3-70b*"]
          - <<: *gpu
            url: http://gpu-2:8000
            weight: 5
          - url: http://gpu-3:8000
            models: *llama
        routing:
          fallback:
            - primary: gpu-1:8000
              fallback: [gpu-2:8000, gpu-3:8000]
              models: *llama
        """);
    assertThat(config.backends()).extracting(BackendConfig::weight).containsExactly(10, 5, 1);
    assertThat(config.backends()).extracting(BackendConfig::models).allSatisfy(
        models -> assertThat(models).containsExactly("llama-3-70b*"));
    assertThat(config.routing().fallback().get(0).models()).containsExactly("llama-3-70b*");
  }

  @Test
  void badAliasesAndMergesAreProblems() {
    assertThat(problems("""
        backends:
          - url: http://a:1
            models: *nothing
          - <<: just text
            url: http://b:1
        """)).containsExactly(
        "backends[0].models: alias *nothing refers to no anchor &nothing above it",
        "backends[1][\"<<\"]: a merge key (<<) takes a mapping or a list of mappings, like <<: *defaults");
  }

  @Test
  void aliasBombsAreRefused() {
    StringBuilder yaml = new StringBuilder("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++) {
      yaml.append("a").append(i).append(": &a").append(i).append(" [");
      yaml.append(("*a" + (i - 1) + ", ").repeat(9)).append("*a").append(i - 1).append("]\n");
    }
    yaml.append(TestConfigs.ONE_BACKEND);
    assertThat(problems(yaml.toString())).anySatisfy(p -> assertThat(p).contains("aliases expand to more than"));
  }

  @Test
  void quotedEmptyIsAnEmptyStringButNoValueIsNull() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        backends:
          - url: http://a:1
            region: ''
          - url: http://b:1
            region:
        """);
    assertThat(config.backends()).extracting(BackendConfig::region).containsExactly("", null);
  }
}
