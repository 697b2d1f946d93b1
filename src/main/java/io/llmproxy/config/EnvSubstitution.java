package io.llmproxy.config;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * {@code ${NAME}} and {@code ${NAME:-default}} in a scalar value, anywhere in it ({@code "Bearer ${TOKEN}"}).
 *
 * <ul>
 *   <li>{@code ${NAME}}: the variable's value; an unset variable gives the empty string and is reported in
 *       {@link Result#unsetVariables()}.
 *   <li>{@code ${NAME:-default}}: the default when the variable is unset or empty (as in a POSIX shell).
 *       The default is literal text up to the first {@code }}.
 *   <li>{@code $${...}}: a literal {@code ${...}}. Any other {@code $} is kept as it is.
 * </ul>
 */
final class EnvSubstitution {

  private static final Pattern NAME = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

  /** @param unsetVariables the variables without a value or a default, in order of use */
  record Result(String value, List<String> unsetVariables) {}

  private EnvSubstitution() {}

  /**
   * @param env a variable's value, or null when it is not set
   * @throws IllegalArgumentException for an unterminated or malformed reference
   */
  static Result apply(String text, Function<String, String> env) {
    if (text.indexOf('$') < 0) {
      return new Result(text, List.of());
    }
    StringBuilder out = new StringBuilder(text.length());
    List<String> unset = new ArrayList<>();
    int i = 0;
    while (i < text.length()) {
      if (text.startsWith("$${", i)) {
        out.append("${");
        i += 3;
      } else if (text.startsWith("${", i)) {
        int close = text.indexOf('}', i + 2);
        if (close < 0) {
          throw new IllegalArgumentException(
              "unterminated ${ (close it with }, or write $${ for a literal ${)");
        }
        String reference = text.substring(i + 2, close);
        int dash = reference.indexOf(":-");
        String name = dash < 0 ? reference : reference.substring(0, dash);
        String fallback = dash < 0 ? null : reference.substring(dash + 2);
        if (!NAME.matcher(name).matches()) {
          throw new IllegalArgumentException("${" + reference + "} is not a variable reference: a name is "
              + "letters, digits and _, not starting with a digit (write $${ for a literal ${)");
        }
        String value = env.apply(name);
        if (fallback != null && (value == null || value.isEmpty())) {
          value = fallback;
        } else if (value == null) {
          unset.add(name);
          value = "";
        }
        out.append(value);
        i = close + 1;
      } else {
        out.append(text.charAt(i));
        i++;
      }
    }
    return new Result(out.toString(), List.copyOf(unset));
  }
}
