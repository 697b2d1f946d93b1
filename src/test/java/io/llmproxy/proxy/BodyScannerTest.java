package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BodyScannerTest {
  private static final String ROLE =
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
  private static final String TOKEN =
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" Hi\"},\"finish_reason\":null}]}\n\n";
  private static final String FINISH =
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n";
  private static final String USAGE =
      "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":15,\"completion_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\n";
  private static final String DONE = "data: [DONE]\n\n";

  /** Feeds the text cut into pieces of {@code size} bytes; returns the index of the chunk with the first token. */
  private static int feedInPieces(BodyScanner s, String text, int size) {
    return feedInPieces(s, text, size, false);
  }

  /** Feeds {@code text} in pieces of {@code size} bytes, in heap buffers or in direct ones (as a socket gives them). */
  private static int feedInPieces(BodyScanner s, String text, int size, boolean direct) {
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    int firstAt = -1;
    int chunk = 0;
    for (int i = 0; i < b.length; i += size, chunk++) {
      byte[] part = java.util.Arrays.copyOfRange(b, i, Math.min(b.length, i + size));
      Buffer buf = direct
          ? io.vertx.core.internal.buffer.BufferInternal.buffer(io.netty.buffer.Unpooled.directBuffer(part.length).writeBytes(part))
          : Buffer.buffer(part);
      if (s.feed(buf) && firstAt < 0) {
        firstAt = chunk;
      }
    }
    return firstAt;
  }

  @Test
  void roleChunkIsNotTheFirstTokenButContentIs() {
    BodyScanner s = BodyScanner.sse(false);
    assertThat(s.feed(Buffer.buffer(ROLE))).isFalse();
    assertThat(s.firstTokenSeen()).isFalse();
    assertThat(s.feed(Buffer.buffer(TOKEN))).isTrue();
    assertThat(s.feed(Buffer.buffer(TOKEN))).isFalse();
    assertThat(s.firstTokenSeen()).isTrue();
  }

  @Test
  void firstByteModeCountsTheRoleChunk() {
    BodyScanner s = BodyScanner.sse(true);
    assertThat(s.feed(Buffer.buffer(ROLE))).isTrue();
  }

  @Test
  void findsTokenAndUsageWhateverTheChunking() {
    String stream = ROLE + TOKEN + TOKEN + FINISH + USAGE + DONE;
    for (int size = 1; size <= stream.length(); size += (size < 40 ? 1 : 37)) {
      BodyScanner s = BodyScanner.sse(false);
      int firstAt = feedInPieces(s, stream, size, size % 2 == 0);
      int tokenEnd = (ROLE + TOKEN).getBytes(StandardCharsets.UTF_8).length - 1; // the '\n' ending the line
      assertThat(firstAt).as("chunk size %d", size).isEqualTo((tokenEnd - 1) / size);
      assertThat(s.usage()).as("chunk size %d", size).isEqualTo(new Usage(12, 3));
      assertThat(s.events()).isEqualTo(6);
      assertThat(s.atEventBoundary()).isTrue();
    }
  }

  @Test
  void crlfLinesAndOtherFieldsAndComments() {
    String stream = ": keep-alive\r\n\r\nevent: message\r\nid: 7\r\n"
        + ROLE.replace("\n\n", "\r\n\r\n") + TOKEN.replace("\n\n", "\r\n\r\n");
    BodyScanner s = BodyScanner.sse(false);
    assertThat(feedInPieces(s, stream, 7)).isGreaterThanOrEqualTo(0);
    assertThat(s.atEventBoundary()).isTrue();
  }

  @Test
  void boundaryIsKnownMidEvent() {
    BodyScanner s = BodyScanner.sse(false);
    s.feed(Buffer.buffer(TOKEN.substring(0, 30)));
    assertThat(s.atEventBoundary()).isFalse();
    s.feed(Buffer.buffer(TOKEN.substring(30, TOKEN.length() - 1)));
    assertThat(s.atEventBoundary()).isFalse();
    s.feed(Buffer.buffer("\n"));
    assertThat(s.atEventBoundary()).isTrue();
  }

  @Test
  void outputKindsThatCountAsTokens() {
    List<String> tokens = List.of(
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"f\"}}]}}]}",
        "{\"choices\":[{\"delta\":{\"reasoning_content\":\"hm\"}}]}",
        "{\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}",
        "{\"choices\":[{\"text\":\" a\",\"finish_reason\":null}]}",
        "{\"index\":0,\"token\":{\"id\":1,\"text\":\" a\",\"special\":false},\"generated_text\":null}",
        // the Responses API and the Messages API, passed through on their own paths
        "{\"type\":\"response.output_text.delta\",\"item_id\":\"m1\",\"output_index\":0,\"delta\":\"Hi\"}",
        "{\"type\":\"response.function_call_arguments.delta\",\"delta\":\"{\\\"a\\\"\"}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}");
    for (String t : tokens) {
      BodyScanner s = BodyScanner.sse(false);
      assertThat(s.feed(Buffer.buffer("data: " + t + "\n\n"))).as(t).isTrue();
    }
    List<String> notTokens = List.of(
        "{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":null}]}",
        "{\"error\":{\"message\":\"boom\"}}",
        "{\"type\":\"response.created\",\"response\":{\"id\":\"r1\"}}",
        "{\"type\":\"response.output_text.delta\",\"delta\":\"\"}",
        "{\"type\":\"message_start\",\"message\":{\"role\":\"assistant\"}}",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "[DONE]",
        "not json");
    for (String t : notTokens) {
      BodyScanner s = BodyScanner.sse(false);
      assertThat(s.feed(Buffer.buffer("data: " + t + "\n\n"))).as(t).isFalse();
    }
  }

  @Test
  void aDataLineWithoutEndHoldsNoMoreThanItsCap() throws Exception {
    // A backend that starts an event and never ends it: the part kept to parse stops growing at the
    // cap, and once it ends, an event that long counts as output.
    BodyScanner s = BodyScanner.sse(false);
    assertThat(s.feed(Buffer.buffer("data: {\"choices\":[{\"delta\":{\"content\":\""))).isFalse();
    Buffer piece = Buffer.buffer("x".repeat(64 * 1024));
    for (int i = 0; i < 64; i++) { // 4 MiB
      assertThat(s.feed(piece)).isFalse();
    }
    java.lang.reflect.Field line = BodyScanner.class.getDeclaredField("line");
    line.setAccessible(true);
    assertThat(((byte[]) line.get(s)).length).isLessThanOrEqualTo(BodyScanner.MAX_LINE);
    assertThat(s.feed(Buffer.buffer("\"}}]}\n\n"))).isTrue();
  }

  @Test
  void longLinesHaveNoCap() {
    String big = "x".repeat(300_000);
    String event = "data: {\"choices\":[{\"delta\":{\"content\":\"" + big + "\"}}]}\n\n";
    BodyScanner s = BodyScanner.sse(false);
    assertThat(feedInPieces(s, event, 8192)).isEqualTo((event.length() - 2) / 8192);
  }

  @Test
  void usageInsideContentIsNotUsage() {
    String tricky = "data: {\"choices\":[{\"delta\":{\"content\":\"the \\\"usage\\\": {\\\"prompt_tokens\\\": 99}\"}}]}\n\n";
    BodyScanner s = BodyScanner.sse(false);
    s.feed(Buffer.buffer(tricky));
    assertThat(s.usage().known()).isFalse();
  }

  @Test
  void plainJsonBodyUsageAndFirstByte() {
    String body = "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hi\"}}],"
        + "\"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 7, \"total_tokens\": 12}}";
    List<Boolean> firsts = new ArrayList<>();
    BodyScanner s = BodyScanner.plain();
    byte[] b = body.getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i < b.length; i += 10) {
      firsts.add(s.feed(Buffer.buffer(java.util.Arrays.copyOfRange(b, i, Math.min(b.length, i + 10)))));
    }
    assertThat(firsts.get(0)).isTrue();
    assertThat(firsts.subList(1, firsts.size())).containsOnly(false);
    assertThat(s.usage()).isEqualTo(new Usage(5, 7));
  }

  @Test
  void onlyTheUsageObjectsOwnCountsCount() {
    BodyScanner s = BodyScanner.plain();
    s.feed(Buffer.buffer("{\"usage\":{\"prompt_tokens_details\":{\"prompt_tokens\":99,\"cached_tokens\":4},"
        + "\"completion_tokens_details\":{\"completion_tokens\":98,\"reasoning_tokens\":[1,2]},"
        + "\"odd \\\"key\\\"\":\"completion_tokens\",\"prompt_tokens\" :\t31 ,\"completion_tokens\":\n 8}}"));
    assertThat(s.usage()).isEqualTo(new Usage(31, 8));

    BodyScanner fraction = BodyScanner.plain();
    fraction.feed(Buffer.buffer("{\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":null}}"));
    assertThat(fraction.usage().known()).isFalse();

    BodyScanner partial = BodyScanner.plain();
    partial.feed(Buffer.buffer("{\"usage\":{\"completion_tokens\":6}}"));
    assertThat(partial.usage()).isEqualTo(new Usage(-1, 6));
  }

  @Test
  void usageIsFoundAtEverySplitAndNotFooledByNearMisses() {
    String decoys = "{\"usages\":{\"prompt_tokens\":1},\"x\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":2}\",\"usage\":null,"
        + "\"\"usage\":3,";
    String body = decoys + "\"usage\" : {\"prompt_tokens\":41,\"completion_tokens\":9}}";
    for (int size = 1; size <= body.length(); size++) {
      BodyScanner s = BodyScanner.plain();
      feedInPieces(s, body, size, size % 3 == 0);
      assertThat(s.usage()).as("chunk size %d", size).isEqualTo(new Usage(41, 9));
    }
  }

  @Test
  void theDoneMarkerIsNoOutputEvent() {
    for (String nl : List.of("\n", "\r\n")) {
      for (String done : List.of(DONE, "data:[DONE]\n\n")) { // with and without the space, as TGI writes it
        BodyScanner s = BodyScanner.sse(false);
        s.feed(Buffer.buffer((ROLE + TOKEN + TOKEN + done).replace("\n", nl)));
        assertThat(s.outputEvents()).as("line ending %s, %s", nl.length(), done.strip()).isEqualTo(2);
      }
    }
  }

  @Test
  void usageNullIsIgnored() {
    BodyScanner s = BodyScanner.sse(false);
    s.feed(Buffer.buffer("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n" + USAGE));
    assertThat(s.usage()).isEqualTo(new Usage(12, 3));
  }

  @Test
  void eventStreamMediaType() {
    assertThat(BodyScanner.isEventStream("text/event-stream")).isTrue();
    assertThat(BodyScanner.isEventStream("Text/Event-Stream; charset=utf-8")).isTrue();
    assertThat(BodyScanner.isEventStream("application/json")).isFalse();
    assertThat(BodyScanner.isEventStream(null)).isFalse();
    assertThat(BodyScanner.isEventStream(" text/event-stream ;charset=utf-8")).isTrue();
    assertThat(BodyScanner.isEventStream("text/event-streams")).isFalse();
    assertThat(BodyScanner.isEventStream("text/event")).isFalse();
    assertThat(BodyScanner.isEventStream("")).isFalse();
    assertThat(BodyScanner.isEventStream("; text/event-stream")).isFalse();
  }
}
