package io.llmproxy.config;

import java.util.regex.Pattern;

/**
 * One problem found in a config.
 *
 * @param line     the 1-based line of the value (or of its nearest written ancestor) in the file; 0 when
 *                 unknown. Used only to list problems in file order.
 * @param path     the dotted path, like {@code backends[2].url}; empty for the file as a whole
 * @param message  what is wrong; never contains a secret's value
 */
record Problem(int line, String path, String message) {

  private static final Pattern PLAIN_KEY = Pattern.compile("[A-Za-z0-9_-]+");

  /** {@code path: message}, or the message alone for the file as a whole. */
  String render() {
    return path.isEmpty() ? message : path + ": " + message;
  }

  /** The path of {@code key} inside the mapping at {@code parent}: {@code a.b}, or {@code a["x.y"]}. */
  static String childPath(String parent, String key) {
    if (PLAIN_KEY.matcher(key).matches()) {
      return parent.isEmpty() ? key : parent + "." + key;
    }
    String quoted = "[\"" + key.replace("\\", "\\\\").replace("\"", "\\\"") + "\"]";
    return parent + quoted;
  }

  /** The path of item {@code index} of the list at {@code parent}: {@code a[3]}. */
  static String itemPath(String parent, int index) {
    return parent + "[" + index + "]";
  }
}
