package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.llmproxy.proxy.RequestBody.InvalidBodyException;
import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.Test;

class RequestBodyTest {

  @Test
  void readsModelAndStreamOnly() throws Exception {
    RequestBody b = RequestBody.parse(Buffer.buffer(
        "{\"messages\":[{\"role\":\"user\",\"content\":\"{\\\"model\\\":\\\"fake\\\"}\"}],\"model\":\"m1\",\"stream\":true,"
            + "\"nested\":{\"model\":\"inner\",\"stream\":false}}"));
    assertThat(b.model()).isEqualTo("m1");
    assertThat(b.stream()).isTrue();
  }

  @Test
  void mappingChangesOnlyTheModelToken() throws Exception {
    String before = "{ \"temperature\" : 0.5,\n  \"model\"  :  \"llama-3-70b\" , \"messages\":[{\"content\":\"héllo ✓\"}] }";
    RequestBody b = RequestBody.parse(Buffer.buffer(before));
    String after = b.withModel("llama-3-70b-instruct").toString();
    assertThat(after).isEqualTo(before.replace("\"llama-3-70b\"", "\"llama-3-70b-instruct\""));
  }

  @Test
  void mappingWithUnicodeBeforeTheModelUsesByteOffsets() throws Exception {
    String before = "{\"messages\":[{\"content\":\"日本語のテキスト\"}],\"model\":\"a\\u0062c\"}";
    RequestBody b = RequestBody.parse(Buffer.buffer(before));
    assertThat(b.model()).isEqualTo("abc");
    assertThat(b.withModel("x\"y").toString())
        .isEqualTo("{\"messages\":[{\"content\":\"日本語のテキスト\"}],\"model\":\"x\\\"y\"}");
  }

  @Test
  void sameModelKeepsTheSameBuffer() throws Exception {
    Buffer raw = Buffer.buffer("{\"model\":\"m\"}");
    RequestBody b = RequestBody.parse(raw);
    assertThat(b.withModel("m")).isSameAs(raw);
  }

  @Test
  void rejectsWhatIsNotOneJsonObject() {
    for (String bad : new String[] {"", "[]", "\"x\"", "{", "{\"model\":}", "{\"model\":\"m\"} {}", "{\"model\":\"m\",}",
        "nonsense", "{\"model\":1}", "{\"stream\":\"yes\"}", "{\"model\":\"m\"}garbage"}) {
      assertThatThrownBy(() -> RequestBody.parse(Buffer.buffer(bad))).as(bad).isInstanceOf(InvalidBodyException.class);
    }
  }

  @Test
  void nullModelAndStreamAreAbsent() throws Exception {
    RequestBody b = RequestBody.parse(Buffer.buffer("{\"model\":null,\"stream\":null}"));
    assertThat(b.model()).isNull();
    assertThat(b.stream()).isFalse();
  }
}
