package io.llmproxy.routing;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class GlobTest {
  @Test
  void matches() {
    assertThat(Glob.of("llama-3-70b*").matches("llama-3-70b")).isTrue();
    assertThat(Glob.of("llama-3-70b*").matches("llama-3-70b-instruct")).isTrue();
    assertThat(Glob.of("llama-3-70b*").matches("llama-3-8b")).isFalse();
    assertThat(Glob.of("*-instruct").matches("mistral-7b-instruct")).isTrue();
    assertThat(Glob.of("q?en-*b").matches("qwen-72b")).isTrue();
    assertThat(Glob.of("q?en-*b").matches("qween-72b")).isFalse();
    assertThat(Glob.of("*").matches("")).isTrue();
    assertThat(Glob.of("a*b*c").matches("aXXbYYbZc")).isTrue();
    assertThat(Glob.of("a*b*c").matches("aXXbYYbZ")).isFalse();
    assertThat(Glob.of("Llama").matches("llama")).isFalse();
  }

  @Test
  void literal() {
    assertThat(Glob.of("qwen-72b").isLiteral()).isTrue();
    assertThat(Glob.of("qwen-*").isLiteral()).isFalse();
  }
}
