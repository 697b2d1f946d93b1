package io.llmproxy.config;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.config.RoutingConfig.FallbackRule;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** {@code config.yaml.example} at the repository root must load, and must show every key the loader knows. */
class ExampleConfigTest {

  private static final Path EXAMPLE = Path.of("config.yaml.example");
  private static final Map<String, String> ENV = Map.of(
      "PROVIDER_KEY", "sk-provider", "LLMPROXY_ADMIN_TOKEN", "admin-token", "REDIS_PASSWORD", "redis-pw");

  private static String example() throws IOException {
    return Files.readString(EXAMPLE, StandardCharsets.UTF_8);
  }

  @Test
  void loads() throws IOException, ConfigException {
    GatewayConfig config = ConfigLoader.parse(example(), ENV::get);
    assertThat(config.backends()).extracting(BackendConfig::name).containsExactly("gpu-1", "gpu-2");
    assertThat(config.backends().get(0).apiKey()).isEqualTo("sk-provider");
    assertThat(config.routing().fallback()).containsExactly(
        new FallbackRule("gpu-1", List.of("gpu-2"), List.of("llama-3-70b*")));
    assertThat(config.routing().sessionAffinity().header()).isEqualTo("x-session-id");
    assertThat(config.admin().token()).isEqualTo("admin-token");
    assertThat(config.auth().redis().password()).isEqualTo("redis-pw");
    assertThat(config.apiKeys().get(0).expiresAt()).isEqualTo(Instant.parse("2026-12-31T23:59:59Z"));
    assertThat(config.drainTimeout()).isEqualTo(Duration.ofSeconds(30));
    assertThat(config.explicitSections()).containsAll(ConfigBinder.OPTIONAL_SECTIONS);
  }

  @Test
  void loadsWithoutAnyVariableSet() throws IOException, ConfigException {
    GatewayConfig config = ConfigLoader.parse(example(), name -> null);
    assertThat(config.backends().get(0).apiKey()).isNull();
    assertThat(config.admin().enabled()).isFalse();
  }

  /** Where the example writes the default, it matches what leaving the key out gives. */
  @Test
  void writtenDefaultsMatchTheLoader() throws IOException, ConfigException {
    GatewayConfig example = ConfigLoader.parse(example(), ENV::get);
    GatewayConfig minimal = TestConfigs.parse(TestConfigs.ONE_BACKEND);
    assertThat(example.listen()).isEqualTo(minimal.listen());
    assertThat(example.strategy()).isEqualTo(minimal.strategy());
    assertThat(example.routing().retry()).isEqualTo(minimal.routing().retry());
    assertThat(example.routing().hedge()).isEqualTo(minimal.routing().hedge());
    assertThat(example.routing().timeouts()).isEqualTo(minimal.routing().timeouts());
    assertThat(example.healthCheck()).isEqualTo(minimal.healthCheck());
    assertThat(example.outlierDetection()).isEqualTo(minimal.outlierDetection());
    assertThat(example.metrics()).isEqualTo(minimal.metrics());
    assertThat(example.logging()).isEqualTo(minimal.logging());
    assertThat(example.dataDir()).isEqualTo(minimal.dataDir());
    assertThat(example.limits()).isEqualTo(minimal.limits());
    assertThat(example.upstream()).isEqualTo(minimal.upstream());
    assertThat(example.drainTimeout()).isEqualTo(minimal.drainTimeout());
  }

  @Test
  void coversEveryKeyTheLoaderKnows() throws IOException, ConfigException {
    List<Problem> problems = new ArrayList<>();
    YamlTreeReader.Tree tree = YamlTreeReader.read(example(), problems);
    ConfigNode.Session session = new ConfigNode.Session(ENV::get, tree.lines(), problems);
    ConfigBinder.bind(ConfigNode.root(session, tree.root()), tree.root());
    assertThat(problems).isEmpty();

    Set<String> known = normalize(session.askedPaths());
    Set<String> written = normalize(tree.lines().keySet());
    assertThat(written).containsAll(known);
  }

  @Test
  void noSectionSaysItTakesEffectLater() throws IOException {
    assertThat(example()).doesNotContain("later release").doesNotContain("no effect yet");
  }

  @Test
  void theAdminSectionPointsAtItsDocs() throws IOException {
    assertThat(example().lines().toList()).anySatisfy(line -> assertThat(line)
        .matches("admin:.*").contains("docs/ADMIN.md").doesNotContain("later release"));
  }

  /** {@code backends[3].url} becomes {@code backends[].url}. */
  private static Set<String> normalize(Set<String> paths) {
    Set<String> normalized = new TreeSet<>();
    for (String path : paths) {
      normalized.add(path.replaceAll("\\[[0-9]+]", "[]"));
    }
    return normalized;
  }
}
