package io.llmproxy.config;

import static io.llmproxy.config.TestConfigs.problems;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

class EnvSubstitutionTest {

  private final Logger logger = (Logger) LoggerFactory.getLogger(ConfigLoader.class);
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

  @Test
  void substitutesWholeAndEmbeddedValues() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        backends:
          - url: "http://${GPU_HOST}:${GPU_PORT}"
            api_key: "${PROVIDER_KEY}"
            headers: {Authorization: "Bearer ${TOKEN}", X-Team: "${TEAM}-${REGION}"}
        admin: {token: "${LLMPROXY_ADMIN_TOKEN}"}
        """, Map.of("GPU_HOST", "gpu-1", "GPU_PORT", "8000", "PROVIDER_KEY", "sk-up", "TOKEN", "t0k",
        "TEAM", "ml", "REGION", "north", "LLMPROXY_ADMIN_TOKEN", "adm"));
    BackendConfig backend = config.backends().get(0);
    assertThat(backend.url()).isEqualTo(URI.create("http://gpu-1:8000"));
    assertThat(backend.name()).isEqualTo("gpu-1:8000");
    assertThat(backend.apiKey()).isEqualTo("sk-up");
    assertThat(backend.headers()).containsExactly(Map.entry("Authorization", "Bearer t0k"),
        Map.entry("X-Team", "ml-north"));
    assertThat(config.admin().token()).isEqualTo("adm");
    assertThat(logs.list).isEmpty();
  }

  @Test
  void defaultsApplyWhenUnsetOrEmpty() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        listen: "${LISTEN:-:9090}"
        backends:
          - url: "${URL:-http://localhost:8000}"
            region: "${REGION:-}"
        logging: {level: "${LOG_LEVEL:-warn}"}
        """, Map.of("URL", "", "LOG_LEVEL", "debug"));
    assertThat(config.listen().port()).isEqualTo(9090);
    assertThat(config.backends().get(0).url()).isEqualTo(URI.create("http://localhost:8000"));
    assertThat(config.backends().get(0).region()).isEmpty();
    assertThat(config.logging().level()).isEqualTo("debug");
    assertThat(logs.list).isEmpty();
  }

  @Test
  void unsetVariableBecomesEmptyAndIsLoggedOnceWithItsPaths() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        backends:
          - url: http://a:1
            api_key: "${PROVIDER_KEY}"
          - url: http://b:1
            api_key: "${PROVIDER_KEY}"
        admin: {token: "${LLMPROXY_ADMIN_TOKEN}"}
        """, Map.of());
    assertThat(config.admin().token()).isEmpty();
    assertThat(config.admin().enabled()).isFalse();
    // An empty api_key means "send none".
    assertThat(config.backends()).extracting(BackendConfig::apiKey).containsOnlyNulls();
    assertThat(logs.list).extracting(ILoggingEvent::getLevel).containsOnly(Level.WARN);
    assertThat(logs.list).extracting(ILoggingEvent::getFormattedMessage).containsExactly(
        "environment variable PROVIDER_KEY is not set; using an empty string for backends[0].api_key, "
            + "backends[1].api_key",
        "environment variable LLMPROXY_ADMIN_TOKEN is not set; using an empty string for admin.token");
  }

  @Test
  void setToEmptyIsNotWarnedAbout() throws ConfigException {
    TestConfigs.parse(TestConfigs.ONE_BACKEND + "admin: {token: \"${T}\"}\n", Map.of("T", ""));
    assertThat(logs.list).isEmpty();
  }

  @Test
  void numbersAndBooleansMayComeFromVariables() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        backends:
          - url: http://a:1
            weight: "${W}"
            max_concurrent: "7"
        routing:
          retry: {enabled: "${RETRY}", max_retries: "${N}", max_wait: "${MAX_WAIT}"}
          hedge: {enabled: "true", budget_percent: "12.5"}
        health_check: {enabled: "FALSE"}
        """, Map.of("W", "10", "RETRY", "false", "N", "4", "MAX_WAIT", "20s"));
    assertThat(config.backends().get(0).weight()).isEqualTo(10);
    assertThat(config.backends().get(0).maxConcurrent()).isEqualTo(7);
    assertThat(config.routing().retry().enabled()).isFalse();
    assertThat(config.routing().retry().maxRetries()).isEqualTo(4);
    assertThat(config.routing().retry().maxWait()).isEqualTo(Duration.ofSeconds(20));
    assertThat(config.routing().hedge().enabled()).isTrue();
    assertThat(config.routing().hedge().budgetPercent()).isEqualTo(12.5);
    assertThat(config.healthCheck().enabled()).isFalse();
  }

  @Test
  void doubleDollarEscapesAReference() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.ONE_BACKEND
        + "admin: {token: \"pa$$word-$${NOT_A_VAR}-${X}\"}\n", Map.of("X", "x", "NOT_A_VAR", "nope"));
    assertThat(config.admin().token()).isEqualTo("pa$$word-${NOT_A_VAR}-x");
  }

  @Test
  void keysAreNotSubstituted() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.ONE_BACKEND
        + "routing: {model_mapping: {\"${M}\": \"${M}\"}}\n", Map.of("M", "llama"));
    assertThat(config.routing().modelMapping()).containsExactly(Map.entry("${M}", "llama"));
  }

  @Test
  void malformedReferencesAreProblems() {
    assertThat(problems(TestConfigs.ONE_BACKEND + "admin: {token: \"${UNCLOSED\"}\n")).containsExactly(
        "admin.token: unterminated ${ (close it with }, or write $${ for a literal ${)");
    assertThat(problems(TestConfigs.ONE_BACKEND + "admin: {token: \"${1BAD}\"}\n")).containsExactly(
        "admin.token: ${1BAD} is not a variable reference: a name is letters, digits and _, not starting with a "
            + "digit (write $${ for a literal ${)");
  }

  @Test
  void unitLevelRules() {
    assertThat(EnvSubstitution.apply("no dollars", n -> "x"))
        .isEqualTo(new EnvSubstitution.Result("no dollars", List.of()));
    assertThat(EnvSubstitution.apply("$HOME ${A}${B} $", Map.of("A", "1")::get))
        .isEqualTo(new EnvSubstitution.Result("$HOME 1 $", List.of("B")));
    assertThat(EnvSubstitution.apply("${A:-x:-y}", n -> null).value()).isEqualTo("x:-y");
    assertThatThrownBy(() -> EnvSubstitution.apply("${}", n -> "v")).isInstanceOf(IllegalArgumentException.class);
  }
}
