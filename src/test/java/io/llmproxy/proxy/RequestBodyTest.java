package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.llmproxy.proxy.RequestBody.InvalidBodyException;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import java.nio.charset.StandardCharsets;
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

  // ---- rewrite(): the model mapped and stream_options.include_usage asked for (SPEC §5)

  private static final String ASK = "\"stream_options\":{\"include_usage\":true}";

  /** The rewritten body, checked to be one JSON object without a repeated key. */
  private static String rewrite(String body, String model, boolean askUsage) throws Exception {
    String out = RequestBody.parse(Buffer.buffer(body)).rewrite(model, askUsage).toString();
    try (JsonParser p = STRICT.createParser(out)) {
      new ObjectMapper(STRICT).readTree(p);
    }
    return out;
  }

  private static final JsonFactory STRICT = JsonFactory.builder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

  private static JsonNode includeUsage(String json) throws Exception {
    return new ObjectMapper().readTree(json).path("stream_options").path("include_usage");
  }

  @Test
  void withoutStreamOptionsTheyAreAddedAtTheEnd() throws Exception {
    assertThat(rewrite("{\"model\":\"m\",\"stream\":true,\"messages\":[]}", null, true))
        .isEqualTo("{\"model\":\"m\",\"stream\":true,\"messages\":[]," + ASK + "}");
    assertThat(rewrite("{\"model\":\"m\",\"stream\":true}\n", null, true))
        .isEqualTo("{\"model\":\"m\",\"stream\":true," + ASK + "}\n");
    assertThat(rewrite("{ \"model\" : \"m\" ,\n  \"stream\" : true\n}", null, true))
        .isEqualTo("{ \"model\" : \"m\" ,\n  \"stream\" : true\n," + ASK + "}");
  }

  @Test
  void emptyStreamOptionsGetIncludeUsage() throws Exception {
    assertThat(rewrite("{\"model\":\"m\",\"stream_options\":{},\"stream\":true}", null, true))
        .isEqualTo("{\"model\":\"m\",\"stream_options\":{\"include_usage\":true},\"stream\":true}");
    assertThat(rewrite("{\"model\":\"m\",\"stream_options\": {  } ,\"stream\":true}", null, true))
        .isEqualTo("{\"model\":\"m\",\"stream_options\": {\"include_usage\":true  } ,\"stream\":true}");
  }

  @Test
  void otherStreamOptionsAreKept() throws Exception {
    String out = rewrite("{\"stream_options\":{\"continuous_usage_stats\":true},\"model\":\"m\",\"stream\":true}", null, true);
    assertThat(out).isEqualTo(
        "{\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true},\"model\":\"m\",\"stream\":true}");
    assertThat(new ObjectMapper().readTree(out).path("stream_options").path("continuous_usage_stats").asBoolean()).isTrue();
  }

  @Test
  void includeUsageFalseOrNullBecomesTrue() throws Exception {
    assertThat(rewrite("{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":false}}", null, true))
        .isEqualTo("{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    assertThat(rewrite("{\"model\":\"m\",\"stream\":true,\"stream_options\":{ \"x\":1, \"include_usage\" :  null , \"y\":[2]}}", null, true))
        .isEqualTo("{\"model\":\"m\",\"stream\":true,\"stream_options\":{ \"x\":1, \"include_usage\" :  true , \"y\":[2]}}");
  }

  @Test
  void streamOptionsNullIsReplacedNotRepeated() throws Exception {
    String out = rewrite("{\"model\":\"m\",\"stream_options\":null,\"stream\":true}", null, true);
    assertThat(out).isEqualTo("{\"model\":\"m\",\"stream_options\":{\"include_usage\":true},\"stream\":true}");
  }

  @Test
  void aClientThatAskedAlreadyKeepsItsBytes() throws Exception {
    Buffer raw = Buffer.buffer("{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    RequestBody b = RequestBody.parse(raw);
    assertThat(b.includeUsage()).isTrue();
    assertThat(b.rewrite(null, true)).isSameAs(raw);
    assertThat(b.rewrite("m", true)).isSameAs(raw);
    assertThat(RequestBody.parse(raw).rewrite(null, false)).isSameAs(raw);
  }

  @Test
  void includeUsageIsReadOnlyWhenTrue() throws Exception {
    assertThat(RequestBody.parse(Buffer.buffer("{\"stream_options\":{\"include_usage\":false}}")).includeUsage()).isFalse();
    assertThat(RequestBody.parse(Buffer.buffer("{\"stream_options\":{\"include_usage\":\"true\"}}")).includeUsage()).isFalse();
    assertThat(RequestBody.parse(Buffer.buffer("{\"x\":{\"stream_options\":{\"include_usage\":true}}}")).includeUsage()).isFalse();
    assertThat(RequestBody.parse(Buffer.buffer("{\"stream_options\":{\"nested\":{\"include_usage\":true}}}")).includeUsage())
        .isFalse();
  }

  @Test
  void modelAndUsageTogetherInEitherOrder() throws Exception {
    // model before stream_options
    assertThat(rewrite("{\"model\":\"llama-3-70b\",\"stream\":true,\"stream_options\":{\"include_usage\":false}}",
        "llama-3-70b-instruct", true))
        .isEqualTo("{\"model\":\"llama-3-70b-instruct\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    // model after stream_options
    assertThat(rewrite("{\"stream_options\":{},\"stream\":true,\"model\":\"llama-3-70b\"}", "llama-3-70b-instruct", true))
        .isEqualTo("{\"stream_options\":{\"include_usage\":true},\"stream\":true,\"model\":\"llama-3-70b-instruct\"}");
    // model after, stream_options absent (added at the end, after the model)
    assertThat(rewrite("{\"stream\":true,\"model\":\"a\"}", "bb", true))
        .isEqualTo("{\"stream\":true,\"model\":\"bb\"," + ASK + "}");
    // model last, include_usage null before it
    assertThat(rewrite("{\"stream_options\":{\"include_usage\":null},\"model\":\"a\",\"stream\":true}", "bb", true))
        .isEqualTo("{\"stream_options\":{\"include_usage\":true},\"model\":\"bb\",\"stream\":true}");
  }

  @Test
  void everyOtherByteIsUnchanged() throws Exception {
    String before = "{\"messages\":[{\"role\":\"user\",\"content\":\"日本語 \\\"stream_options\\\":{} ✓\"}],\n"
        + "  \"model\" : \"a\", \"temperature\":0.25, \"stream\":true}";
    String out = rewrite(before, "b", true);
    assertThat(out).isEqualTo(before.replace("\"model\" : \"a\"", "\"model\" : \"b\"")
        .replace("\"stream\":true}", "\"stream\":true," + ASK + "}"));
    assertThat(includeUsage(out).asBoolean()).isTrue();
  }

  @Test
  void aBodyAtAnOffsetInItsArrayIsRewrittenAtTheRightPlaces() throws Exception {
    // A body that is a slice of a larger array: the offsets must be relative to the body.
    byte[] big = ("xxxxxxxx{\"model\":\"a\",\"stream\":true,\"stream_options\":{}}yyyy").getBytes(StandardCharsets.UTF_8);
    ByteBuf slice = Unpooled.wrappedBuffer(big).slice(8, big.length - 12);
    assertThat(slice.hasArray()).isTrue();
    assertThat(slice.arrayOffset()).isEqualTo(8);
    RequestBody b = RequestBody.parse(BufferInternal.buffer(slice));
    assertThat(b.model()).isEqualTo("a");
    assertThat(b.rewrite("bb", true).toString())
        .isEqualTo("{\"model\":\"bb\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
  }

  @Test
  void noChangeAskedKeepsTheSameBuffer() throws Exception {
    Buffer raw = Buffer.buffer("{\"model\":\"m\",\"stream\":true}");
    assertThat(RequestBody.parse(raw).rewrite(null, false)).isSameAs(raw);
    assertThat(RequestBody.parse(raw).rewrite("m", false)).isSameAs(raw);
  }
}
