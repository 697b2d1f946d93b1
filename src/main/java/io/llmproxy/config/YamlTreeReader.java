package io.llmproxy.config;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;

/**
 * Reads YAML text into a Jackson tree with Jackson's streaming YAML parser, keeping the line of every
 * path for ordering problems.
 *
 * <p>Differences from {@code YAMLMapper.readTree}, each because the plain tree would hide a mistake:
 * <ul>
 *   <li>Every scalar stays text as written ({@code 010} stays {@code "010"}, not 8); the binder parses
 *       numbers and booleans itself, so {@code weight: 10} and {@code weight: "10"} read the same.
 *       A plain {@code ~}, {@code null} or a key with no value is a {@link NullNode}; a quoted
 *       {@code ''} is the empty string.
 *   <li>A duplicated key is a problem naming its path and both lines; reading goes on, so every
 *       duplicate is reported at once.
 *   <li>Anchors, aliases ({@code *name}) and merge keys ({@code <<: *name}) are expanded, where the plain
 *       tree turns an alias into the anchor's name as a string.
 *   <li>A second YAML document ({@code ---}) is an error rather than silently ignored.
 * </ul>
 */
final class YamlTreeReader {

  /** A bound on the nodes that aliases may copy, against "billion laughs" documents. */
  private static final int MAX_ALIAS_NODES = 100_000;

  private static final YAMLFactory FACTORY = YAMLFactory.builder()
      .enable(YAMLParser.Feature.PARSE_BOOLEAN_LIKE_WORDS_AS_STRINGS)
      .build();

  /** @param root null for an empty document */
  record Tree(JsonNode root, Map<String, Integer> lines) {}

  private final String source;
  private final YAMLParser parser;
  private final List<Problem> problems;
  private final Map<String, Integer> lines = new HashMap<>();
  private final Map<String, JsonNode> anchors = new HashMap<>();
  private int aliasNodes;

  private YamlTreeReader(String source, YAMLParser parser, List<Problem> problems) {
    this.source = source;
    this.parser = parser;
    this.problems = problems;
  }

  /**
   * Reads one YAML document. Duplicate keys and bad aliases are added to {@code problems}.
   *
   * @throws ConfigException for a syntax error, with its line and column
   */
  static Tree read(String yaml, List<Problem> problems) throws ConfigException {
    try (YAMLParser parser = (YAMLParser) FACTORY.createParser(yaml)) {
      YamlTreeReader reader = new YamlTreeReader(yaml, parser, problems);
      JsonToken first = parser.nextToken();
      if (first == null) {
        return new Tree(null, reader.lines);
      }
      JsonNode root = reader.readValue(first, "");
      if (parser.nextToken() != null) {
        problems.add(new Problem(line(parser.currentTokenLocation()), "",
            "line " + line(parser.currentTokenLocation()) + ": a second YAML document (after ---) is not "
                + "allowed; a config file holds exactly one"));
      }
      return new Tree(root, reader.lines);
    } catch (JsonProcessingException e) {
      List<String> all = new ArrayList<>();
      for (Problem p : problems) {
        all.add(p.render());
      }
      all.add(syntaxError(e));
      throw new ConfigException(all);
    } catch (IOException e) {
      // Reading from a String: there is no I/O to fail.
      throw new IllegalStateException(e);
    }
  }

  private JsonNode readValue(JsonToken token, String path) throws IOException {
    int line = line(parser.currentTokenLocation());
    lines.putIfAbsent(path, line);
    if (parser.isCurrentAlias()) {
      return resolveAlias(parser.getText(), path, line);
    }
    String anchor = parser.getObjectId();
    JsonNode value = switch (token) {
      case START_OBJECT -> readMapping(path, line);
      case START_ARRAY -> readSequence(path);
      case VALUE_NULL -> NullNode.getInstance();
      default -> isPlainEmpty(token) ? NullNode.getInstance() : TextNode.valueOf(parser.getText());
    };
    if (anchor != null) {
      anchors.put(anchor, value);
    }
    return value;
  }

  private ObjectNode readMapping(String path, int line) throws IOException {
    ObjectNode mapping = JsonNodeFactory.instance.objectNode();
    Map<String, Integer> keyLines = new HashMap<>();
    List<JsonNode> merges = new ArrayList<>();
    JsonToken token;
    while ((token = parser.nextToken()) != JsonToken.END_OBJECT) {
      String key = parser.currentName();
      int keyLine = line(parser.currentTokenLocation());
      JsonToken valueToken = parser.nextToken();
      String childPath = Problem.childPath(path, key);
      if ("<<".equals(key)) {
        merges.add(readValue(valueToken, childPath));
        continue;
      }
      Integer firstLine = keyLines.putIfAbsent(key, keyLine);
      if (firstLine != null) {
        problems.add(new Problem(keyLine, childPath,
            "duplicate key (first at line " + firstLine + ", again at line " + keyLine + ")"));
        readValue(valueToken, childPath + "#duplicate");
        continue;
      }
      mapping.set(key, readValue(valueToken, childPath));
    }
    for (JsonNode merge : merges) {
      merge(mapping, merge, path, line);
    }
    return mapping;
  }

  /** YAML merge keys: keys written in the mapping win, then earlier merged mappings. */
  private void merge(ObjectNode target, JsonNode merged, String path, int line) {
    if (merged.isArray()) {
      for (JsonNode item : merged) {
        merge(target, item, path, line);
      }
      return;
    }
    if (!merged.isObject()) {
      problems.add(new Problem(line, Problem.childPath(path, "<<"),
          "a merge key (<<) takes a mapping or a list of mappings, like <<: *defaults"));
      return;
    }
    Iterator<Map.Entry<String, JsonNode>> fields = merged.fields();
    while (fields.hasNext()) {
      Map.Entry<String, JsonNode> field = fields.next();
      if (!target.has(field.getKey())) {
        target.set(field.getKey(), field.getValue());
        recordLines(field.getValue(), Problem.childPath(path, field.getKey()), line);
      }
    }
  }

  private ArrayNode readSequence(String path) throws IOException {
    ArrayNode sequence = JsonNodeFactory.instance.arrayNode();
    JsonToken token;
    while ((token = parser.nextToken()) != JsonToken.END_ARRAY) {
      sequence.add(readValue(token, Problem.itemPath(path, sequence.size())));
    }
    return sequence;
  }

  /**
   * Whether the value is written as nothing at all ({@code key:} with no value), which YAML reads as null
   * but the streaming parser reports as an empty string, like a quoted {@code ''}.
   */
  private boolean isPlainEmpty(JsonToken token) throws IOException {
    if (token != JsonToken.VALUE_STRING || !parser.getText().isEmpty()) {
      return false;
    }
    long offset = parser.currentTokenLocation().getCharOffset();
    if (offset < 0 || offset >= source.length()) {
      return true;
    }
    char first = source.charAt((int) offset);
    return first != '\'' && first != '"' && first != '!';
  }

  private JsonNode resolveAlias(String name, String path, int line) {
    JsonNode target = anchors.get(name);
    if (target == null) {
      problems.add(new Problem(line, path, "alias *" + name + " refers to no anchor &" + name + " above it"));
      return NullNode.getInstance();
    }
    aliasNodes += countNodes(target);
    if (aliasNodes > MAX_ALIAS_NODES) {
      problems.add(new Problem(line, path, "aliases expand to more than " + MAX_ALIAS_NODES + " values"));
      return NullNode.getInstance();
    }
    JsonNode copy = target.deepCopy();
    recordLines(copy, path, line);
    return copy;
  }

  private void recordLines(JsonNode node, String path, int line) {
    lines.putIfAbsent(path, line);
    if (node.isObject()) {
      Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
      while (fields.hasNext()) {
        Map.Entry<String, JsonNode> field = fields.next();
        recordLines(field.getValue(), Problem.childPath(path, field.getKey()), line);
      }
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        recordLines(node.get(i), Problem.itemPath(path, i), line);
      }
    }
  }

  private static int countNodes(JsonNode node) {
    int count = 1;
    for (JsonNode child : node) {
      count += countNodes(child);
    }
    return count;
  }

  private static int line(JsonLocation location) {
    return location == null ? 0 : Math.max(location.getLineNr(), 0);
  }

  /**
   * {@code line L, column C: problem}, without SnakeYAML's quoted snippet of the source (which could
   * show a secret).
   */
  private static String syntaxError(JsonProcessingException e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof MarkedYAMLException marked && marked.getProblemMark() != null) {
        Mark mark = marked.getProblemMark();
        StringBuilder message = new StringBuilder()
            .append("line ").append(mark.getLine() + 1)
            .append(", column ").append(mark.getColumn() + 1)
            .append(": YAML syntax error: ").append(clean(marked.getProblem()));
        Mark contextMark = marked.getContextMark();
        if (marked.getContext() != null && contextMark != null) {
          message.append(" (").append(clean(marked.getContext()))
              .append(" at line ").append(contextMark.getLine() + 1)
              .append(", column ").append(contextMark.getColumn() + 1).append(')');
        }
        return message.toString();
      }
    }
    JsonLocation location = e.getLocation();
    String original = e.getOriginalMessage();
    if (original != null && original.startsWith("Expected a field name")) {
      original = "a mapping key must be a plain value, not a list or a mapping";
    }
    return location == null
        ? "YAML syntax error: " + original
        : "line " + location.getLineNr() + ", column " + location.getColumnNr() + ": YAML syntax error: " + original;
  }

  private static String clean(String text) {
    return text == null ? "" : text.strip().replaceAll("\\s+", " ");
  }
}
