package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.config.ConfigLoader;
import io.llmproxy.testing.Logs;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import java.nio.file.Path;
import java.util.Map;
import org.slf4j.LoggerFactory;

/**
 * Issue 3 accepted the sections of later features and warned that they did nothing yet; since issue
 * 7 every one of them takes effect and no such warning is left. What is still not supported (Redis
 * storage) says so at startup.
 */
class StartupWarningsTest {
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1);

  @TempDir
  Path dataDir;

  private final Logger logger = (Logger) LoggerFactory.getLogger(Gateway.class);
  private final ListAppender<ILoggingEvent> logs = new ListAppender<>();

  @BeforeEach
  void captureLogs() {
    logs.start();
    logger.addAppender(logs);
  }

  @AfterEach
  void releaseLogs() {
    logger.detachAppender(logs);
  }

  private List<String> warnings() {
    return Logs.snapshot(logs).stream().filter(e -> e.getLevel() == Level.WARN).map(ILoggingEvent::getFormattedMessage).toList();
  }

  @Test
  void everySectionTakesEffectAndNoneIsSaidToDoNothing() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            routing:
              hedge: {enabled: true, max_parallel: 2}
            outlier_detection: {consecutive_failures: 3}
            rate_limit:
              enabled: true
              global: {requests_per_second: 500, burst_size: 1000}
            auth: {enabled: true, storage: file}
            admin: {token: "adm-token"}
            api_keys:
              - key: "sk-llmproxy-dev-team-001"
                name: "研发部门"
            data_dir: "${DATA}"
            health_check: {enabled: false}
            """, Map.of("DATA", dataDir.toString()), INSTANT)) {
      assertThat(warnings()).isEmpty();
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(401);
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false),
          "authorization", "Bearer sk-llmproxy-dev-team-001").status()).isEqualTo(200);
      assertThat(gw.posts(0)).singleElement().satisfies(r -> assertThat(r.headers()).doesNotContainKey("authorization"));
      assertThat(dataDir.resolve("llmproxy.mv")).exists();
    }
  }

  @Test
  void redisStorageIsNotSupportedYetAndSaysSo() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            rate_limit: {enabled: true, storage: redis}
            auth: {enabled: true, storage: redis}
            data_dir: "${DATA}"
            health_check: {enabled: false}
            """, Map.of("DATA", dataDir.toString()), INSTANT)) {
      assertThat(warnings()).containsExactlyInAnyOrder(
          "auth.storage: redis is not supported yet; keys and quota counters are kept in " + dataDir,
          "rate_limit.storage: redis is not supported yet; each gateway limits on its own (memory)");
    }
  }

  @Test
  void aConfigWithoutThemLogsNoSuchWarning() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            routing:
              retry: {enabled: true}
              timeouts: {total: 1m}
            health_check: {enabled: false}
            """, INSTANT)) {
      assertThat(warnings()).isEmpty();
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(200);
      assertThat(gw.posts(0)).hasSize(1);
    }
  }

  @Test
  void perKeyRateLimitsWithRateLimitingOffAreNamedAsNotEnforced() throws Exception {
    String warning = "per-key rate limits are set (rate_limit.per_key or api_keys[].rate_limit) but "
        + "rate_limit.enabled is false: none of them is enforced";
    String perKey = """
        backends: [{url: "http://127.0.0.1:1"}]
        rate_limit: {per_key: {requests_per_minute: 60}}
        """;
    String override = """
        backends: [{url: "http://127.0.0.1:1"}]
        auth: {enabled: true}
        api_keys:
          - {key: "sk-llmproxy-limited-001", rate_limit: {max_concurrent: 2}}
        """;
    assertThat(ConfigLoader.parse(perKey, name -> null).warnings()).containsExactly(warning);
    assertThat(ConfigLoader.parse(override, name -> null).warnings()).containsExactly(warning);
    assertThat(ConfigLoader.parse(perKey.replace("{per_key", "{enabled: true, per_key")
        + "auth: {enabled: true}\n", name -> null).warnings()).isEmpty();
    // seed 003's first example: per-key limits, and no keys at all
    assertThat(ConfigLoader.parse(perKey.replace("{per_key", "{enabled: true, per_key"), name -> null).warnings())
        .containsExactly("rate_limit.per_key limits each key, but auth.enabled is false: requests carry no key, so"
            + " only rate_limit.global applies");
  }
}
