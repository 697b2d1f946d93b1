package io.llmproxy.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** What tests read in a response body: OpenAI's error shape, an event stream's payloads. */
public final class ResponseBodies {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ResponseBodies() {}

  /**
   * Asserts that {@code body} is OpenAI's error shape, as JSON: {@code {"error": {"message",
   * "type", "param", "code"}}} and nothing else at the top; returns the {@code error} object. The
   * status is the caller's to check.
   */
  public static JsonNode assertOpenAiError(String contentType, String body) {
    assertThat(contentType).as("content-type of %s", body).startsWith("application/json");
    JsonNode root;
    try {
      root = JSON.readTree(body);
    } catch (IOException e) {
      throw new AssertionError("error body is not JSON: " + body, e);
    }
    assertThat(root != null && root.isObject()).as(body).isTrue();
    assertThat(root.size()).as("only 'error' at the top: %s", body).isEqualTo(1);
    JsonNode error = root.path("error");
    assertThat(error.isObject()).as(body).isTrue();
    assertThat(error.path("message").isTextual()).as("message: %s", body).isTrue();
    assertThat(error.path("message").asText()).as(body).isNotBlank();
    assertThat(error.path("type").isTextual()).as("type: %s", body).isTrue();
    assertThat(error.has("param")).as("param present: %s", body).isTrue();
    assertThat(error.get("param").isTextual() || error.get("param").isNull()).as("param: %s", body).isTrue();
    assertThat(error.path("code").isTextual()).as("code: %s", body).isTrue();
    return error;
  }

  /** The payloads of an event stream's {@code data:} lines, in order. */
  public static List<String> sseData(String text) {
    List<String> data = new ArrayList<>();
    for (String line : text.split("\n")) {
      if (line.startsWith("data:")) {
        data.add(line.substring(5).trim());
      }
    }
    return data;
  }
}
