package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * Issue 3, config: the sections whose features come in later issues are accepted, and each is said
 * at startup to do nothing yet (WARN "&lt;key&gt; has no effect yet"), never silently ignored.
 */
class StartupWarningsTest {
  private static final SimulatorOptions INSTANT =
      SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1);

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
    return logs.list.stream().filter(e -> e.getLevel() == Level.WARN).map(ILoggingEvent::getFormattedMessage).toList();
  }

  @Test
  void eachSectionOfALaterFeatureIsWarnedAboutOnce() {
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
            usage_hook: {enabled: true, url: "http://billing.internal/api/usage", timeout: 1s}
            data_dir: ./data
            health_check: {enabled: false}
            """, INSTANT)) {
      assertThat(warnings()).containsExactlyInAnyOrder(
          "rate_limit has no effect yet",
          "auth has no effect yet",
          "api_keys has no effect yet",
          "usage_hook has no effect yet",
          "admin has no effect yet",
          "data_dir has no effect yet");
      assertThat(logs.list).filteredOn(e -> e.getFormattedMessage().endsWith("has no effect yet"))
          .allSatisfy(e -> assertThat(e.getLevel()).isEqualTo(Level.WARN));
      // Accepted and without effect: a request without any key still goes through (no auth yet).
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(200);
      assertThat(gw.posts(0)).singleElement().satisfies(r -> assertThat(r.headers()).doesNotContainKey("authorization"));
    }
  }

  @Test
  void aSectionWrittenButDisabledOrEmptyIsStillWarnedAbout() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            routing:
              hedge: {enabled: false}
            rate_limit: {enabled: false}
            health_check: {enabled: false}
            """, INSTANT)) {
      assertThat(warnings()).containsExactlyInAnyOrder("rate_limit has no effect yet");
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("m", false)).status()).isEqualTo(200);
      assertThat(gw.posts(0)).hasSize(1);
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
}
