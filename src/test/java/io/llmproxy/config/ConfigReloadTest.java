package io.llmproxy.config;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** What a reload takes at once, what waits for a restart, and how the backends' changes are named. */
class ConfigReloadTest {
  private static final String BASE = """
      listen: "127.0.0.1:8080"
      backends:
        - {url: "http://gpu-1:8000", name: gpu-1, models: ["llama-*"]}
        - {url: "http://gpu-2:8000", name: gpu-2}
      limits: {max_body_size: 1MB, client_keep_alive_timeout: 60s}
      """;

  private static GatewayConfig parse(String yaml) throws ConfigException {
    return ConfigLoader.parse(yaml, n -> null);
  }

  @Test
  void theSameFileChangesNothing() throws Exception {
    ConfigReload r = ConfigReload.of(parse(BASE), parse(BASE));
    assertThat(r.changed()).isFalse();
    assertThat(r.effective()).isEqualTo(parse(BASE));
  }

  @Test
  void backendsRoutingAndLimitsAreTakenAtOnce() throws Exception {
    GatewayConfig next = parse("""
        listen: "127.0.0.1:8080"
        backends:
          - {url: "http://gpu-1:8000", name: gpu-1, models: ["llama-*", "qwen-*"]}
          - {url: "http://gpu-3:8000", name: gpu-3}
        load_balance_strategy: least_connections
        routing:
          model_mapping: {gpt-4: llama-3-70b}
        limits: {max_body_size: 2MB, client_keep_alive_timeout: 60s}
        """);
    ConfigReload r = ConfigReload.of(parse(BASE), next);
    assertThat(r.applied()).containsExactly("backends: added gpu-3; removed gpu-2; changed gpu-1", "load_balance_strategy",
        "routing", "limits");
    assertThat(r.needRestart()).isEmpty();
    assertThat(r.effective().backends()).isEqualTo(next.backends());
    assertThat(r.effective().limits().maxBodySizeBytes()).isEqualTo(2_000_000L);
  }

  @Test
  void whatTheProcessOpenedAtStartWaitsForARestartAndKeepsItsValue() throws Exception {
    GatewayConfig running = parse(BASE);
    GatewayConfig next = parse("""
        listen: "127.0.0.1:9090"
        backends:
          - {url: "http://gpu-1:8000", name: gpu-1, models: ["llama-*"]}
          - {url: "http://gpu-2:8000", name: gpu-2}
        limits: {max_body_size: 1MB, client_keep_alive_timeout: 5s}
        logging: {format: text}
        upstream: {max_connections_per_backend: 10}
        """);
    ConfigReload r = ConfigReload.of(running, next);
    assertThat(r.applied()).isEmpty();
    assertThat(r.needRestart()).containsExactly("listen", "logging.format", "upstream",
        "limits.client_keep_alive_timeout");
    assertThat(r.changed()).isTrue();
    GatewayConfig e = r.effective();
    assertThat(e.listen()).isEqualTo(running.listen());
    assertThat(e.logging()).isEqualTo(running.logging());
    assertThat(e.upstream()).isEqualTo(running.upstream());
    assertThat(e.limits()).isEqualTo(running.limits());
  }

  @Test
  void rateLimitsApplyWhileRateLimitingStaysOn() throws Exception {
    String on = BASE + "rate_limit: {enabled: true, global: {requests_per_second: 500, burst_size: 1000}, "
        + "per_key: {requests_per_minute: 60}}\n";
    GatewayConfig next = parse(BASE + "rate_limit: {enabled: true, global: {requests_per_second: 50}, "
        + "per_key: {requests_per_minute: 10, max_concurrent: 2}}\n");
    ConfigReload r = ConfigReload.of(parse(on), next);
    assertThat(r.applied()).containsExactly("rate_limit");
    assertThat(r.needRestart()).isEmpty();
    assertThat(r.effective().rateLimit()).isEqualTo(next.rateLimit());
  }

  @Test
  void theLogLevelIsTakenAtOnceItsFormatAndTheAccessLogWait() throws Exception {
    GatewayConfig running = parse(BASE + "logging: {format: json, level: info, access_log: true}\n");
    ConfigReload r = ConfigReload.of(running, parse(BASE + "logging: {format: text, level: debug, access_log: false}\n"));
    assertThat(r.applied()).containsExactly("logging.level");
    assertThat(r.needRestart()).containsExactly("logging.format", "logging.access_log");
    assertThat(r.effective().logging()).isEqualTo(new GatewayConfig.LoggingConfig(GatewayConfig.LogFormat.JSON, "debug",
        true));
  }

  @Test
  void turningRateLimitingOnOrOffWaitsForARestart() throws Exception {
    GatewayConfig off = parse(BASE);
    GatewayConfig on = parse(BASE + "rate_limit: {enabled: true, global: {requests_per_second: 5}}\n");
    for (GatewayConfig[] pair : new GatewayConfig[][] {{off, on}, {on, off}}) {
      ConfigReload r = ConfigReload.of(pair[0], pair[1]);
      assertThat(r.applied()).isEmpty();
      assertThat(r.needRestart()).containsExactly("rate_limit");
      assertThat(r.effective().rateLimit()).isEqualTo(pair[0].rateLimit());
    }
  }

  @Test
  void reorderedBackendsAreNamedSo() throws Exception {
    GatewayConfig next = parse("""
        listen: "127.0.0.1:8080"
        backends:
          - {url: "http://gpu-2:8000", name: gpu-2}
          - {url: "http://gpu-1:8000", name: gpu-1, models: ["llama-*"]}
        limits: {max_body_size: 1MB, client_keep_alive_timeout: 60s}
        """);
    assertThat(ConfigReload.of(parse(BASE), next).applied()).containsExactly("backends: reordered");
  }
}
