package io.llmproxy.config;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.RoutingConfig.FallbackRule;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The YAML users paste from the product docs (seeds 003 and 004) must load unchanged. */
class SeedConfigsTest {

  static Stream<String> seeds() {
    return Stream.of("003-scenario1.yaml", "003-scenario2.yaml", "003-scenario3.yaml", "003-scenario4.yaml",
        "003-scenario5.yaml", "004-local-dev-backends.yaml", "004-helm-values-config.yaml",
        "004-configmap.yaml");
  }

  @ParameterizedTest
  @MethodSource("seeds")
  void loads(String seed) throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.resource("seeds/" + seed));
    assertThat(config.backends()).isNotEmpty();
  }

  /** Guards "unchanged": each resource is a verbatim block of the docs, when the docs are beside the repo. */
  @ParameterizedTest
  @MethodSource("seeds")
  void isVerbatimFromTheDocs(String seed) throws IOException {
    Path seedsDir = Path.of("..", "shared", "seeds");
    Assumptions.assumeTrue(Files.isDirectory(seedsDir), "shared/seeds is not beside the repository");
    String prefix = seed.substring(0, 3) + "_";
    String doc;
    try (Stream<Path> files = Files.list(seedsDir)) {
      Path file = files.filter(p -> p.getFileName().toString().startsWith(prefix)).findFirst().orElseThrow();
      doc = Files.readString(file, StandardCharsets.UTF_8);
    }
    String resource = TestConfigs.resource("seeds/" + seed);
    String indent = switch (seed) {
      case "004-helm-values-config.yaml" -> "  ";
      case "004-configmap.yaml" -> "    ";
      default -> "";
    };
    String expected = resource.lines().map(line -> line.isEmpty() ? line : indent + line)
        .reduce((a, b) -> a + "\n" + b).orElseThrow();
    assertThat(doc).contains(expected);
  }

  @Test
  void scenario1_fallbackUrlsResolveToDefaultNames() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.resource("seeds/003-scenario1.yaml"));
    assertThat(config.listen().port()).isEqualTo(8000);
    assertThat(config.backends()).extracting(BackendConfig::name)
        .containsExactly("gpu-1.internal:8000", "gpu-2.internal:8000", "gpu-3.internal:8000");
    assertThat(config.routing().fallback()).containsExactly(new FallbackRule("gpu-1.internal:8000",
        List.of("gpu-2.internal:8000", "gpu-3.internal:8000"), List.of()));
    assertThat(config.routing().retry().initialWait()).isEqualTo(Duration.ofMillis(500));
    assertThat(config.rateLimit().global().requestsPerSecond()).isEqualTo(500.0);
    assertThat(config.rateLimit().global().burstSize()).isEqualTo(500);
    assertThat(config.rateLimit().perKey().requestsPerSecond()).isEqualTo(10.0);
    assertThat(config.rateLimit().perKey().requestsPerMinute()).isNull();
    assertThat(config.usageHook().url()).isEqualTo(URI.create("http://billing.internal/api/usage"));
    assertThat(config.explicitSections())
        .containsExactlyInAnyOrder("rate_limit", "usage_hook", "health_check", "routing.retry", "routing.fallback");
  }

  @Test
  void scenario2_apiKeys() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.resource("seeds/003-scenario2.yaml"));
    assertThat(config.auth().enabled()).isTrue();
    assertThat(config.auth().storage()).isEqualTo(AuthConfig.Storage.FILE);
    assertThat(config.auth().defaults()).isEqualTo(new AuthConfig.KeyDefaults(QuotaPeriod.DAILY, 100_000));
    assertThat(config.apiKeys()).hasSize(3);
    ApiKeyConfig dev = config.apiKeys().get(0);
    assertThat(dev.key()).isEqualTo("sk-llmproxy-dev-team-001");
    assertThat(dev.name()).isEqualTo("研发部门");
    assertThat(dev.userId()).isEqualTo("dept_dev");
    assertThat(dev.status()).isEqualTo(KeyStatus.ACTIVE);
    assertThat(dev.totalQuota()).isEqualTo(500_000L);
    assertThat(dev.quotaResetPeriod()).isNull();
    assertThat(dev.allowedIps()).containsExactly("10.0.1.0/24");
    assertThat(dev.expiresAt()).isNull();
    assertThat(dev.rateLimit()).isNull();
    assertThat(config.apiKeys()).extracting(ApiKeyConfig::allowedIps)
        .containsExactly(List.of("10.0.1.0/24"), List.of("10.0.2.0/24"), List.of("10.0.3.0/24"));
    assertThat(config.rateLimit().perKey()).isEqualTo(new KeyLimits(null, 100L, null, 5));
    assertThat(config.usageHook().timeout()).isEqualTo(Duration.ofSeconds(2));
    assertThat(config.usageHook().retry()).isEqualTo(3);
    assertThat(config.metrics().path()).isEqualTo("/metrics");
  }

  @Test
  void scenario3_twelveBackendsMappingAndFallbackByName() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.resource("seeds/003-scenario3.yaml"));
    assertThat(config.backends()).hasSize(12);
    assertThat(config.backends().get(4).models()).containsExactly("llama-3-8b*");
    assertThat(config.backends().get(11).name()).isEqualTo("vllm-qwen-4:8000");
    assertThat(config.routing().modelMapping()).containsExactly(
        java.util.Map.entry("llama-3-70b", "llama-3-70b-instruct"),
        java.util.Map.entry("llama-3-8b", "llama-3-8b-instruct"),
        java.util.Map.entry("mistral", "mistral-7b-instruct-v0.2"),
        java.util.Map.entry("qwen", "qwen-72b-chat"));
    assertThat(config.routing().retry()).isEqualTo(
        new RoutingConfig.RetryConfig(true, 3, Duration.ofSeconds(1), Duration.ofSeconds(10)));
    assertThat(config.routing().fallback()).containsExactly(new FallbackRule("vllm-llama70b-1:8000",
        List.of("vllm-llama70b-2:8000", "vllm-llama70b-3:8000", "vllm-llama70b-4:8000"), List.of("llama-3-70b*")));
    assertThat(config.auth().storage()).isEqualTo(AuthConfig.Storage.REDIS);
    assertThat(config.auth().redis()).isEqualTo(new AuthConfig.RedisConfig("redis:6379", "", 0));
    assertThat(config.rateLimit().storage()).isEqualTo(RateLimitConfig.Storage.REDIS);
    assertThat(config.rateLimit().global()).isEqualTo(new RateLimitConfig.GlobalLimit(1000, 2000));
    assertThat(config.rateLimit().perKey()).isEqualTo(new KeyLimits(10.0, 500L, 100_000L, 5));
    assertThat(config.healthCheck().interval()).isEqualTo(Duration.ofSeconds(10));
    assertThat(config.healthCheck().timeout()).isEqualTo(Duration.ofSeconds(5));
  }

  @Test
  void scenario4_leastConnectionsAndAllowedModels() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.resource("seeds/003-scenario4.yaml"));
    assertThat(config.strategy()).isEqualTo(Strategy.LEAST_CONNECTIONS);
    assertThat(config.apiKeys()).extracting(ApiKeyConfig::allowedModels).containsExactly(
        List.of("llama-3-70b", "qwen-72b"), List.of("llama-3-70b"), List.of("llama-3-70b", "qwen-72b", "mistral-7b"));
    // The scenario has api_keys without an auth section: auth stays at its default (off).
    assertThat(config.auth().enabled()).isFalse();
    assertThat(config.explicitSections()).contains("api_keys").doesNotContain("auth");
  }

  @Test
  void scenario5_latencyBasedRegionsAndTwoFallbackRules() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.resource("seeds/003-scenario5.yaml"));
    assertThat(config.strategy()).isEqualTo(Strategy.LATENCY_BASED);
    assertThat(config.backends()).extracting(BackendConfig::region)
        .containsExactly("north", "east", "south", "south", "west");
    assertThat(config.routing().fallback()).extracting(FallbackRule::primary)
        .containsExactly("beijing.edge:8000", "shanghai.edge:8000");
    assertThat(config.routing().fallback().get(1).fallback())
        .containsExactly("beijing.edge:8000", "shenzhen.edge:8000");
  }

  @Test
  void deploymentConfigs() throws ConfigException {
    GatewayConfig configMap = TestConfigs.parse(TestConfigs.resource("seeds/004-configmap.yaml"));
    assertThat(configMap.listen().port()).isEqualTo(8080);
    assertThat(configMap.usageHook().url()).isEqualTo(URI.create("https://billing.yourcompany.com/llm-usage"));
    assertThat(configMap.healthCheck().interval()).isEqualTo(Duration.ofSeconds(10));
    assertThat(configMap.healthCheck().timeout()).isEqualTo(Duration.ofSeconds(3));

    GatewayConfig helm = TestConfigs.parse(TestConfigs.resource("seeds/004-helm-values-config.yaml"));
    assertThat(helm.backends()).singleElement().satisfies(b -> {
      assertThat(b.url()).isEqualTo(URI.create("http://vllm-service:8000"));
      assertThat(b.weight()).isEqualTo(5);
    });
    assertThat(helm.usageHook().enabled()).isTrue();

    GatewayConfig local = TestConfigs.parse(TestConfigs.resource("seeds/004-local-dev-backends.yaml"));
    assertThat(local.backends()).singleElement().extracting(BackendConfig::name).isEqualTo("localhost:8000");
  }
}
