package io.llmproxy.config;

import static java.nio.charset.StandardCharsets.UTF_8;
import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads the YAML config of SPEC §3 into a validated {@link GatewayConfig} with every default filled in.
 *
 * <ul>
 *   <li>Every problem is collected, in file order, as {@code path: message} ({@code backends[2].url: ...});
 *       an unknown key is a problem, with a "did you mean" suggestion for a near miss.
 *   <li>{@code ${VAR}}, {@code ${VAR:-default}} are substituted in values (not keys), also inside longer
 *       text; {@code $${X}} is a literal {@code ${X}}. A variable that is not set and has no default
 *       becomes the empty string, and is logged once at WARN with the paths that use it (never a value).
 *       Where the empty string is not acceptable (a required URL, say), the problem says the variable is
 *       not set.
 *   <li>Numbers and booleans may also be written as strings ({@code weight: "10"}), so that they can
 *       come from the environment.
 * </ul>
 *
 * <p>Problems never contain the file's name: callers put it in front.
 */
public final class ConfigLoader {

  private static final Logger LOG = LoggerFactory.getLogger(ConfigLoader.class);

  private ConfigLoader() {}

  /**
   * Reads and validates a config file, with variables from {@link System#getenv}.
   *
   * @throws ConfigException when the config has problems; when the file cannot be read at all, the
   *                         exception's {@linkplain Throwable#getCause() cause} is the {@link IOException}
   */
  public static GatewayConfig load(Path file) throws ConfigException {
    requireNonNull(file, "file");
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new ConfigException(List.of("cannot read the file: " + describe(e)), e);
    }
    String yaml;
    try {
      yaml = UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes))
          .toString();
    } catch (CharacterCodingException e) {
      throw new ConfigException(List.of("the file is not UTF-8 text"));
    }
    return parse(yaml, System::getenv);
  }

  /**
   * Parses and validates config text.
   *
   * @param env a variable's value, or null when it is not set
   * @throws ConfigException with every problem found
   */
  public static GatewayConfig parse(String yaml, Function<String, String> env) throws ConfigException {
    requireNonNull(yaml, "yaml");
    requireNonNull(env, "env");
    String text = yaml.startsWith("\uFEFF") ? yaml.substring(1) : yaml;
    List<Problem> problems = new ArrayList<>();
    YamlTreeReader.Tree tree = YamlTreeReader.read(text, problems);
    JsonNode root = tree.root();
    if (root == null || root.isNull()) {
      throw new ConfigException(List.of(
          "the config is empty; it needs at least: backends: [{url: \"http://localhost:8000\"}]"));
    }
    if (!root.isObject()) {
      throw new ConfigException(List.of("the top level must be a mapping of keys (listen:, backends:, ...), "
          + "got " + (root.isArray() ? "a list" : "a single value")));
    }
    ConfigNode.Session session = new ConfigNode.Session(env, tree.lines(), problems);
    GatewayConfig config = ConfigBinder.bind(ConfigNode.root(session, root), root);
    session.reportUnknownKeys(ConfigBinder.HINTS);
    for (Map.Entry<String, List<String>> unset : session.unsetVariables().entrySet()) {
      LOG.warn("environment variable {} is not set; using an empty string for {}",
          unset.getKey(), String.join(", ", unset.getValue()));
    }
    if (!problems.isEmpty()) {
      throw new ConfigException(session.renderedProblems());
    }
    return config;
  }

  private static String describe(IOException e) {
    if (e instanceof NoSuchFileException) {
      return "no such file";
    }
    if (e instanceof AccessDeniedException) {
      return "permission denied";
    }
    String message = e.getMessage();
    return message == null ? e.getClass().getSimpleName() : message;
  }
}
