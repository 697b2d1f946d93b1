package io.llmproxy.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * A value in the config tree that knows its dotted path ({@code backends[2].url}). Typed reads give a
 * default when the value is absent or {@code null}, and when it is invalid they record a problem at
 * this path (and give the default, so binding goes on and every problem is found in one pass).
 *
 * <p>A mapping read with {@link #asSection()} remembers the keys asked of it; every other key it holds
 * is reported at the end by {@link Session#reportUnknownKeys}.
 *
 * <p>Messages never echo a value read as a string, so secrets do not leak into them; only values that
 * failed to parse as a number, duration, size and the like are quoted.
 */
final class ConfigNode {

  private final Session session;
  private final String path;
  private final int line;
  private final JsonNode json;
  private final Set<String> knownKeys = new LinkedHashSet<>();
  private boolean registered;

  private ConfigNode(Session session, String path, int line, JsonNode json) {
    this.session = session;
    this.path = path;
    this.line = line;
    this.json = json;
  }

  static ConfigNode root(Session session, JsonNode json) {
    return new ConfigNode(session, "", 0, json);
  }

  String path() {
    return path;
  }

  /** Written in the file with a value other than {@code null}. */
  boolean isPresent() {
    return json != null && !json.isNull();
  }

  /** Written as a mapping. */
  boolean isMapping() {
    return json != null && json.isObject();
  }

  /** Written as a list. */
  boolean isList() {
    return json != null && json.isArray();
  }

  /** Whether this mapping holds {@code key}, even with a null value; does not count as reading it. */
  boolean has(String key) {
    return json != null && json.isObject() && json.has(key);
  }

  /** The value at {@code key} (absent when this is not a mapping or has no such key). */
  ConfigNode get(String key) {
    knownKeys.add(key);
    JsonNode child = json != null && json.isObject() ? json.get(key) : null;
    String childPath = Problem.childPath(path, key);
    session.askedPaths.add(childPath);
    return new ConfigNode(session, childPath, session.lineOf(childPath, line), child);
  }

  /** {@code get(key).asSection()}. */
  ConfigNode section(String key) {
    return get(key).asSection();
  }

  /**
   * This value as a mapping of known keys. Absent or null reads as an empty mapping; anything else that
   * is not a mapping is a problem and reads as an empty mapping.
   */
  ConfigNode asSection() {
    if (!isPresent()) {
      return this;
    }
    if (!json.isObject()) {
      problem("expected a mapping (key: value lines), got " + kind(json));
      return new ConfigNode(session, path, line, null);
    }
    if (!registered) {
      registered = true;
      session.sections.add(this);
    }
    return this;
  }

  /** The items of a list; absent or null is an empty list. */
  List<ConfigNode> items() {
    if (!isPresent()) {
      return List.of();
    }
    if (!json.isArray()) {
      problem("expected a list, got " + kind(json));
      return List.of();
    }
    List<ConfigNode> items = new ArrayList<>(json.size());
    for (int i = 0; i < json.size(); i++) {
      String itemPath = Problem.itemPath(path, i);
      items.add(new ConfigNode(session, itemPath, session.lineOf(itemPath, line), json.get(i)));
    }
    return items;
  }

  /**
   * The text of a single value with {@code ${VAR}} substituted; null when absent, null, or not a single
   * value (a problem then).
   */
  String text() {
    if (!isPresent()) {
      return null;
    }
    if (!json.isValueNode()) {
      problem("expected a single value, got " + kind(json));
      return null;
    }
    return session.substitute(line, path, json.asText());
  }

  String string(String defaultValue) {
    String text = text();
    return text == null ? defaultValue : text;
  }

  /** A string that, when written, must not be empty. */
  String nonEmptyString(String defaultValue) {
    String text = text();
    if (text == null) {
      return defaultValue;
    }
    if (text.isBlank()) {
      problem("must not be empty");
      return defaultValue;
    }
    return text;
  }

  boolean bool(boolean defaultValue) {
    return parse(ValueParsers::bool, defaultValue);
  }

  int integer(int defaultValue, int min) {
    Long value = optionalLong(min);
    if (value == null) {
      return defaultValue;
    }
    if (value > Integer.MAX_VALUE) {
      problem("must be at most " + Integer.MAX_VALUE + ", got " + value);
      return defaultValue;
    }
    return value.intValue();
  }

  long longValue(long defaultValue, long min) {
    Long value = optionalLong(min);
    return value == null ? defaultValue : value;
  }

  /** Null when absent; otherwise a whole number of at least {@code min}. */
  Integer optionalInteger(int min) {
    Long value = optionalLong(min);
    if (value != null && value > Integer.MAX_VALUE) {
      problem("must be at most " + Integer.MAX_VALUE + ", got " + value);
      return null;
    }
    return value == null ? null : value.intValue();
  }

  /** Null when absent; otherwise a whole number of at least {@code min}. */
  Long optionalLong(long min) {
    Long value = parse(ValueParsers::integer, null);
    if (value != null && value < min) {
      problem("must be at least " + min + ", got " + value);
      return null;
    }
    return value;
  }

  /** Null when absent; otherwise a number of at least {@code min}. */
  Double optionalDecimal(double min) {
    Double value = parse(ValueParsers::decimal, null);
    if (value != null && value < min) {
      problem("must be at least " + trim(min) + ", got " + trim(value));
      return null;
    }
    return value;
  }

  double decimal(double defaultValue, double min) {
    Double value = optionalDecimal(min);
    return value == null ? defaultValue : value;
  }

  /** A duration of 0 or more. */
  Duration duration(Duration defaultValue) {
    return parse(ValueParsers::duration, defaultValue);
  }

  /** A duration above 0. */
  Duration positiveDuration(Duration defaultValue) {
    Duration value = duration(defaultValue);
    if (value.isZero()) {
      problem("must be more than 0");
      return defaultValue;
    }
    return value;
  }

  /**
   * An enum constant, written in any case with {@code _} or {@code -} ({@code weighted-round-robin},
   * {@code WEIGHTED_ROUND_ROBIN}).
   */
  <E extends Enum<E>> E enumValue(Class<E> type, E defaultValue) {
    String text = text();
    if (text == null) {
      return defaultValue;
    }
    E constant = ValueParsers.enumConstant(type, text);
    if (constant == null) {
      problem(ValueParsers.unknownEnumValue(type, text));
      return defaultValue;
    }
    return constant;
  }

  /** Parses the text with {@code parser}; its {@link IllegalArgumentException} becomes a problem. */
  <T> T parse(Function<String, T> parser, T defaultValue) {
    String text = text();
    if (text == null) {
      return defaultValue;
    }
    try {
      return parser.apply(text);
    } catch (IllegalArgumentException e) {
      problem(e.getMessage());
      return defaultValue;
    }
  }

  /** A list of non-empty strings; absent or null is an empty list. */
  List<String> stringList() {
    List<String> values = new ArrayList<>();
    for (ConfigNode item : items()) {
      if (!item.isPresent()) {
        item.problem("must not be empty");
        continue;
      }
      String text = item.nonEmptyString(null);
      if (text != null) {
        values.add(text);
      }
    }
    return List.copyOf(values);
  }

  /**
   * A mapping with any keys and single values (numbers and booleans read as their text), in file order.
   * Absent or null is an empty mapping.
   */
  Map<String, String> stringMap() {
    Map<String, String> values = new LinkedHashMap<>();
    if (!isPresent()) {
      return values;
    }
    if (!json.isObject()) {
      problem("expected a mapping (key: value lines), got " + kind(json));
      return values;
    }
    Iterator<String> keys = json.fieldNames();
    while (keys.hasNext()) {
      String key = keys.next();
      ConfigNode value = get(key);
      if (!value.isPresent()) {
        value.problem("must have a value");
        continue;
      }
      String text = value.text();
      if (text != null) {
        values.put(key, text);
      }
    }
    return values;
  }

  /** Records a problem at this path. */
  void problem(String message) {
    session.problem(line, path, message);
  }

  private static String kind(JsonNode node) {
    if (node.isObject()) {
      return "a mapping";
    }
    if (node.isArray()) {
      return "a list";
    }
    return "a single value";
  }

  private static String trim(double value) {
    return value == Math.rint(value) && Math.abs(value) < 1e15 ? Long.toString((long) value) : Double.toString(value);
  }

  /** The state shared by the nodes of one load: problems, env lookups, the sections read. */
  static final class Session {

    private final Function<String, String> env;
    private final Map<String, Integer> lines;
    private final List<Problem> problems;
    private final Map<String, List<String>> unsetVariables = new LinkedHashMap<>();
    private final Map<String, List<String>> unsetByPath = new HashMap<>();
    private final List<ConfigNode> sections = new ArrayList<>();
    private final Set<String> askedPaths = new LinkedHashSet<>();

    /**
     * @param env       a variable's value, or null when not set
     * @param lines     the line of each path written in the file
     * @param problems  where problems go (may already hold some)
     */
    Session(Function<String, String> env, Map<String, Integer> lines, List<Problem> problems) {
      this.env = env;
      this.lines = lines;
      this.problems = problems;
    }

    int lineOf(String path, int fallback) {
      return lines.getOrDefault(path, fallback);
    }

    void problem(int line, String path, String message) {
      List<String> unset = unsetByPath.get(path);
      if (unset != null) {
        message += " (environment variable " + String.join(", ", unset) + (unset.size() == 1 ? " is" : " are")
            + " not set)";
      }
      problems.add(new Problem(line, path, message));
    }

    String substitute(int line, String path, String text) {
      EnvSubstitution.Result result;
      try {
        result = EnvSubstitution.apply(text, env);
      } catch (IllegalArgumentException e) {
        problem(line, path, e.getMessage());
        return null;
      }
      for (String variable : result.unsetVariables()) {
        unsetVariables.computeIfAbsent(variable, v -> new ArrayList<>()).add(path);
        unsetByPath.computeIfAbsent(path, p -> new ArrayList<>()).add(variable);
      }
      return result.value();
    }

    /** Every path the binder asked for, written or not (for checking that an example covers every key). */
    Set<String> askedPaths() {
      return askedPaths;
    }

    /** Each variable used but not set (without a default), with the paths that used it. */
    Map<String, List<String>> unsetVariables() {
      return unsetVariables;
    }

    /**
     * Reports every key of a section read with {@link #asSection()} that the binder did not ask for.
     *
     * @param hints suggestions by the full path of an unknown key, for keys that belong elsewhere
     */
    void reportUnknownKeys(Map<String, String> hints) {
      for (ConfigNode section : sections) {
        Iterator<String> keys = section.json.fieldNames();
        while (keys.hasNext()) {
          String key = keys.next();
          if (section.knownKeys.contains(key)) {
            continue;
          }
          String keyPath = Problem.childPath(section.path, key);
          String suggestion = hints.get(keyPath);
          if (suggestion == null) {
            suggestion = Suggestions.closest(key, section.knownKeys);
          }
          String message = suggestion != null
              ? "unknown key; did you mean '" + suggestion + "'?"
              : "unknown key (expected one of: " + String.join(", ", section.knownKeys) + ")";
          problems.add(new Problem(lineOf(keyPath, section.line), keyPath, message));
        }
      }
    }

    /** The problems in file order, each {@code path: message}. */
    List<String> renderedProblems() {
      return problems.stream()
          .sorted(Comparator.comparingInt(Problem::line))
          .map(Problem::render)
          .toList();
    }
  }
}
