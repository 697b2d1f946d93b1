package io.llmproxy.proxy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;

/**
 * Decides whether one SSE data payload carries generated output (SPEC §6.4): a non-empty
 * {@code delta.content}, {@code text}, {@code tool_calls}, reasoning, or a {@code finish_reason};
 * for TGI, a token's text or the final {@code generated_text}; for the Responses and Messages APIs
 * passed through, a non-empty delta or a stop reason. A role-only chunk, an error event and
 * {@code [DONE]} do not count.
 */
final class TokenDetector {
  private static final ObjectMapper JSON = new ObjectMapper();

  private TokenDetector() {}

  static boolean carriesOutput(byte[] a, int off, int len) {
    JsonNode root;
    try {
      root = JSON.readTree(a, off, len);
    } catch (IOException e) {
      return false; // "[DONE]" or not JSON
    }
    if (root == null || !root.isObject()) {
      return false;
    }
    JsonNode choices = root.get("choices");
    if (choices != null && choices.isArray()) {
      for (JsonNode choice : choices) {
        if (nonEmpty(choice.get("text"))) {
          return true;
        }
        JsonNode fr = choice.get("finish_reason");
        if (fr != null && !fr.isNull()) {
          return true;
        }
        JsonNode delta = choice.get("delta");
        if (delta != null && delta.isObject()
            && (nonEmpty(delta.get("content")) || nonEmpty(delta.get("reasoning_content"))
                || nonEmpty(delta.get("reasoning")) || nonEmpty(delta.get("tool_calls"))
                || nonEmpty(delta.get("refusal")) || nonEmpty(delta.get("function_call")))) {
          return true;
        }
      }
      return false;
    }
    JsonNode token = root.get("token"); // TGI /generate_stream
    if (token != null && token.isObject()) {
      return nonEmpty(token.get("text")) || nonEmpty(root.get("generated_text"));
    }
    JsonNode type = root.get("type");
    if (type != null && type.isTextual()) {
      String t = type.textValue();
      // the Responses API (/v1/responses): response.output_text.delta, ...reasoning_text.delta,
      // ...function_call_arguments.delta; the Messages API (/v1/messages): content_block_delta, and
      // message_delta with its stop_reason
      if (t.startsWith("response.") && t.endsWith(".delta")) {
        return nonEmpty(root.get("delta"));
      }
      JsonNode delta = root.get("delta");
      if (t.equals("content_block_delta")) {
        return delta != null && delta.isObject() && (nonEmpty(delta.get("text")) || nonEmpty(delta.get("thinking"))
            || nonEmpty(delta.get("partial_json")));
      }
      if (t.equals("message_delta")) {
        return delta != null && delta.isObject() && nonEmpty(delta.get("stop_reason"));
      }
    }
    return false;
  }

  private static boolean nonEmpty(JsonNode n) {
    if (n == null || n.isNull()) {
      return false;
    }
    if (n.isTextual()) {
      return !n.textValue().isEmpty();
    }
    if (n.isArray() || n.isObject()) {
      return !n.isEmpty();
    }
    return true;
  }
}
