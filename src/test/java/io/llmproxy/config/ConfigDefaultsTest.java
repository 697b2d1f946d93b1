package io.llmproxy.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.llmproxy.config.GatewayConfig.LimitsConfig;
import io.llmproxy.config.GatewayConfig.ListenAddress;
import io.llmproxy.config.GatewayConfig.LogFormat;
import io.llmproxy.config.GatewayConfig.LoggingConfig;
import io.llmproxy.config.GatewayConfig.MetricsConfig;
import io.llmproxy.config.GatewayConfig.UpstreamConfig;
import io.llmproxy.config.RoutingConfig.FirstTokenMode;
import io.llmproxy.config.RoutingConfig.HedgeConfig;
import io.llmproxy.config.RoutingConfig.HedgeThreshold;
import io.llmproxy.config.RoutingConfig.RetryConfig;
import io.llmproxy.config.RoutingConfig.TimeoutsConfig;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A minimal config gets exactly the defaults of SPEC §3 and the records' javadoc. */
class ConfigDefaultsTest {

  @Test
  void minimalConfigGetsEveryDefault() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.ONE_BACKEND);

    assertThat(config.listen()).isEqualTo(new ListenAddress("0.0.0.0", 8080));
    assertThat(config.backends()).containsExactly(new BackendConfig(URI.create("http://localhost:8000"),
        "localhost:8000", 1, List.of(), null, null, Map.of(), 0));
    assertThat(config.strategy()).isEqualTo(Strategy.WEIGHTED_ROUND_ROBIN);

    RoutingConfig routing = config.routing();
    assertThat(routing.modelMapping()).isEmpty();
    assertThat(routing.retry()).isEqualTo(new RetryConfig(true, 2, Duration.ofMillis(500), Duration.ofSeconds(10)));
    assertThat(routing.fallback()).isEmpty();
    assertThat(routing.hedge()).isEqualTo(new HedgeConfig(false, true, 20, new HedgeThreshold(95.0, null),
        Duration.ofMillis(20), Duration.ofSeconds(30), 2, 10.0, FirstTokenMode.CONTENT));
    assertThat(routing.sessionAffinity()).isNull();
    assertThat(routing.timeouts()).isEqualTo(new TimeoutsConfig(Duration.ofSeconds(2), Duration.ofSeconds(120),
        Duration.ofSeconds(60), Duration.ofMinutes(15)));

    assertThat(config.healthCheck()).isEqualTo(
        new HealthCheckConfig(true, Duration.ofSeconds(5), "/health", Duration.ofSeconds(3), 1, 2));
    assertThat(config.outlierDetection()).isEqualTo(new OutlierDetectionConfig(true, 3, 0.5, 10, Duration.ofSeconds(30),
        Duration.ofSeconds(5), Duration.ofMinutes(5), 3, Duration.ofSeconds(30)));
    assertThat(config.rateLimit()).isEqualTo(new RateLimitConfig(false, RateLimitConfig.Storage.MEMORY,
        new RateLimitConfig.GlobalLimit(0, 0), new KeyLimits(null, null, null, null)));
    assertThat(config.auth()).isEqualTo(new AuthConfig(false, AuthConfig.Storage.FILE,
        new AuthConfig.RedisConfig("localhost:6379", "", 0), new AuthConfig.KeyDefaults(QuotaPeriod.DAILY, 0),
        List.of()));
    assertThat(config.admin()).isEqualTo(new AdminConfig(""));
    assertThat(config.admin().enabled()).isFalse();
    assertThat(config.apiKeys()).isEmpty();
    assertThat(config.usageHook()).isEqualTo(new UsageHookConfig(false, null, Duration.ofSeconds(1), 2));
    assertThat(config.metrics()).isEqualTo(new MetricsConfig(true, "/metrics"));
    assertThat(config.logging()).isEqualTo(new LoggingConfig(LogFormat.JSON, "info", true));
    assertThat(config.dataDir()).isEqualTo(Path.of("./data"));
    assertThat(config.limits()).isEqualTo(new LimitsConfig(32L * 1024 * 1024, Duration.ofSeconds(75), Duration.ofSeconds(60), Duration.ofSeconds(60)));
    assertThat(config.upstream()).isEqualTo(new UpstreamConfig(16_384, Duration.ofSeconds(60), -1));
    assertThat(config.drainTimeout()).isEqualTo(Duration.ofSeconds(30));
    assertThat(config.explicitSections()).isEmpty();
  }

  @Test
  void collectionsAreUnmodifiable() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        backends:
          - url: http://a:1
            models: [x]
            headers: {X-A: "1"}
        routing:
          model_mapping: {a: b}
        """);
    BackendConfig backend = config.backends().get(0);
    assertThatThrownBy(() -> config.backends().add(backend)).isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> backend.models().add("y")).isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> backend.headers().put("b", "c")).isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> config.routing().modelMapping().put("b", "c"))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> config.explicitSections().add("x")).isInstanceOf(UnsupportedOperationException.class);
  }

  @Test
  void mapsKeepFileOrder() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        backends:
          - url: http://a:1
            headers: {Z-Last: z, A-First: a, M-Mid: 7}
        routing:
          model_mapping: {zeta: z, alpha: a, mu: m, beta: b, "qwen2.5": q}
        """);
    assertThat(config.backends().get(0).headers()).containsExactly(
        Map.entry("Z-Last", "z"), Map.entry("A-First", "a"), Map.entry("M-Mid", "7"));
    assertThat(config.routing().modelMapping().keySet()).containsExactly("zeta", "alpha", "mu", "beta", "qwen2.5");
  }

  @Test
  void explicitSectionsListWhatIsWritten() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.ONE_BACKEND + """
        routing:
          hedge: {enabled: true}
          session_affinity: {header: x-session-id}
          timeouts:
          model_mapping: {}
        outlier_detection: {}
        admin: {token: t}
        upstream: {}
        limits: {max_body_size: 1MiB}
        logging: {level: debug}
        """);
    assertThat(config.explicitSections()).containsExactlyInAnyOrder("routing.hedge", "routing.session_affinity",
        "routing.timeouts", "outlier_detection", "admin", "upstream", "limits", "logging");
  }

  @Test
  void nullValuesMeanTheDefault() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        listen:
        backends:
          - url: http://a:1
            weight: ~
            models:
        routing:
          retry:
        health_check: null
        """);
    assertThat(config.listen().port()).isEqualTo(8080);
    assertThat(config.backends().get(0).weight()).isEqualTo(1);
    assertThat(config.backends().get(0).models()).isEmpty();
    assertThat(config.routing().retry().maxRetries()).isEqualTo(2);
    assertThat(config.healthCheck().interval()).isEqualTo(Duration.ofSeconds(5));
  }

  @Test
  void globalBurstDefaultsToTheRateRoundedUp() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.ONE_BACKEND
        + "rate_limit: {global: {requests_per_second: 2.5}}\n");
    assertThat(config.rateLimit().global()).isEqualTo(new RateLimitConfig.GlobalLimit(2.5, 3));
  }
}
