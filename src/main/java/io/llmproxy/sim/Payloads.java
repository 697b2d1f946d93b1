package io.llmproxy.sim;

import com.fasterxml.jackson.databind.JsonNode;
import io.vertx.core.buffer.Buffer;

/** The JSON bodies of whole (non-streamed) responses, written by hand in a fixed field order. */
final class Payloads {

  private Payloads() {}

  static Buffer chatCompletion(Profile profile, long id, long created, String escapedModel,
      int tokens, boolean finishLength, int promptTokens) {
    return Buffer.buffer("{\"id\":\"chatcmpl-" + id + "\",\"object\":\"chat.completion\",\"created\":"
        + created + ",\"model\":\"" + escapedModel + "\",\"system_fingerprint\":\""
        + profile.escapedName + "\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        + "\"content\":\"" + profile.escapedText(tokens) + "\"},\"logprobs\":null,\"finish_reason\":"
        + finishReason(finishLength) + "}],\"usage\":" + StreamEvents.usageJson(promptTokens, tokens)
        + "}");
  }

  static Buffer completion(Profile profile, long id, long created, String escapedModel,
      int tokens, boolean finishLength, int promptTokens) {
    return Buffer.buffer("{\"id\":\"cmpl-" + id + "\",\"object\":\"text_completion\",\"created\":"
        + created + ",\"model\":\"" + escapedModel + "\",\"system_fingerprint\":\""
        + profile.escapedName + "\",\"choices\":[{\"index\":0,\"text\":\""
        + profile.escapedText(tokens) + "\",\"logprobs\":null,\"finish_reason\":"
        + finishReason(finishLength) + ",\"stop_reason\":null}],\"usage\":"
        + StreamEvents.usageJson(promptTokens, tokens) + "}");
  }

  static Buffer generate(Profile profile, int tokens) {
    return Buffer.buffer("{\"generated_text\":\"" + profile.escapedText(tokens) + "\"}");
  }

  /**
   * One embedding of 8 numbers per input (a string, or an array of strings, or of token arrays).
   * The numbers come from {@code h}, the murmur3 finalizer of the input's {@code String.hashCode}
   * (of its JSON text if it is not a string): number {@code k} is
   * {@code ((h >>> 4k) & 15) / 16 - 0.5}.
   */
  static Buffer embeddings(JsonNode input, String escapedModel, int promptTokens) {
    StringBuilder sb = new StringBuilder("{\"object\":\"list\",\"data\":[");
    if (input != null && input.isArray() && (input.isEmpty() || !input.get(0).isNumber())) {
      for (int i = 0; i < input.size(); i++) {
        appendEmbedding(sb, i, input.get(i));
      }
    } else {
      appendEmbedding(sb, 0, input);
    }
    return Buffer.buffer(sb.append("],\"model\":\"").append(escapedModel)
        .append("\",\"usage\":{\"prompt_tokens\":").append(promptTokens)
        .append(",\"total_tokens\":").append(promptTokens).append("}}").toString());
  }

  private static void appendEmbedding(StringBuilder sb, int index, JsonNode input) {
    int hash = mix(input == null ? 0 : input.isTextual() ? input.asText().hashCode()
        : input.toString().hashCode());
    if (index > 0) {
      sb.append(',');
    }
    sb.append("{\"object\":\"embedding\",\"index\":").append(index).append(",\"embedding\":[");
    for (int k = 0; k < 8; k++) {
      if (k > 0) {
        sb.append(',');
      }
      sb.append(((hash >>> (4 * k)) & 15) / 16.0 - 0.5);
    }
    sb.append("]}");
  }

  private static int mix(int h) {
    h ^= h >>> 16;
    h *= 0x85ebca6b;
    h ^= h >>> 13;
    h *= 0xc2b2ae35;
    return h ^ (h >>> 16);
  }

  /**
   * OpenAI's error shape. {@code code} is a JSON string, or null for JSON null.
   */
  static Buffer error(String message, String type, String code) {
    return Buffer.buffer("{\"error\":{\"message\":\"" + Profile.escape(message) + "\",\"type\":\""
        + type + "\",\"param\":null,\"code\":" + (code == null ? "null" : "\"" + code + "\"")
        + "}}");
  }

  private static String finishReason(boolean length) {
    return length ? "\"length\"" : "\"stop\"";
  }
}
