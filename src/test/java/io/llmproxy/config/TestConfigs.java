package io.llmproxy.config;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/** Helpers shared by the config tests. */
final class TestConfigs {

  static final String ONE_BACKEND = "backends: [{url: \"http://localhost:8000\"}]\n";

  private TestConfigs() {}

  static GatewayConfig parse(String yaml) throws ConfigException {
    return ConfigLoader.parse(yaml, name -> null);
  }

  static GatewayConfig parse(String yaml, Map<String, String> env) throws ConfigException {
    return ConfigLoader.parse(yaml, env::get);
  }

  /** The problems of a config that must fail. */
  static List<String> problems(String yaml) {
    return problems(yaml, Map.of());
  }

  static List<String> problems(String yaml, Map<String, String> env) {
    ConfigException[] thrown = new ConfigException[1];
    assertThatThrownBy(() -> ConfigLoader.parse(yaml, env::get))
        .isInstanceOfSatisfying(ConfigException.class, e -> thrown[0] = e);
    return thrown[0].problems();
  }

  static String resource(String name) {
    try (InputStream in = TestConfigs.class.getResourceAsStream("/" + name)) {
      if (in == null) {
        throw new IllegalArgumentException("no test resource " + name);
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
