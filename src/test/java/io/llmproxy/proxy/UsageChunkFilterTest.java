package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * The usage-only chunk, and only it, is taken out of a stream for a client that did not ask for
 * usage (SPEC §5); every other byte passes unchanged, whatever the chunking and line endings.
 */
class UsageChunkFilterTest {
  private static final String ROLE =
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n";
  private static final String TOKEN =
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\\"usage\\\":{}\"},\"finish_reason\":null}]}\n\n";
  /** vLLM's continuous usage stats: a token chunk that also has usage is not the usage-only chunk. */
  private static final String TOKEN_WITH_USAGE =
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" Hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":14,\"completion_tokens\":2}}\n\n";
  private static final String USAGE =
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":15,\"completion_tokens\":3}}\n\n";
  private static final String DONE = "data: [DONE]\n\n";

  private static final String STREAM = ROLE + TOKEN + TOKEN_WITH_USAGE + USAGE + DONE;
  private static final String EXPECTED = ROLE + TOKEN + TOKEN_WITH_USAGE + DONE;

  private static String crlf(String s) {
    return s.replace("\n", "\r\n");
  }

  /** Filters {@code text} cut at the given byte positions; returns what the client gets. */
  private static String filter(String text, int... cuts) {
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    UsageChunkFilter f = new UsageChunkFilter();
    Buffer out = Buffer.buffer();
    int from = 0;
    for (int cut : cuts) {
      out.appendBuffer(f.filter(Buffer.buffer(java.util.Arrays.copyOfRange(b, from, cut))));
      from = cut;
    }
    out.appendBuffer(f.filter(Buffer.buffer(java.util.Arrays.copyOfRange(b, from, b.length))));
    out.appendBuffer(f.rest());
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void onlyTheUsageOnlyEventIsRemoved() {
    UsageChunkFilter f = new UsageChunkFilter();
    assertThat(f.filter(Buffer.buffer(STREAM)).toString()).isEqualTo(EXPECTED);
    assertThat(f.removed()).isEqualTo(1);
    assertThat(f.rest().length()).isZero();
  }

  @Test
  void aStreamWithoutUsageChunkIsPassedAsTheSameBuffers() {
    UsageChunkFilter f = new UsageChunkFilter();
    Buffer role = Buffer.buffer(ROLE);
    Buffer token = Buffer.buffer(TOKEN);
    assertThat(f.filter(role)).isSameAs(role);
    assertThat(f.filter(token)).isSameAs(token);
    assertThat(f.removed()).isZero();
  }

  @Test
  void aUsageOnlyLastEventWithoutItsBlankLineIsRemovedToo() {
    for (String end : new String[] {"", "\n", "\r\n"}) {
      String stream = ROLE + TOKEN + USAGE.strip() + end;
      assertThat(filter(stream)).as("ending %s", end.replace("\r", "CR").replace("\n", "LF"))
          .isEqualTo(ROLE + TOKEN);
    }
    String unfinishedToken = ROLE + TOKEN.strip();
    assertThat(filter(unfinishedToken)).as("any other last event goes as it is").isEqualTo(unfinishedToken);
  }

  @Test
  void crlfLineEndings() {
    assertThat(filter(crlf(STREAM))).isEqualTo(crlf(EXPECTED));
  }

  @Test
  void everySplitIntoTwoChunks() {
    for (String[] s : new String[][] {{STREAM, EXPECTED}, {crlf(STREAM), crlf(EXPECTED)}}) {
      int len = s[0].getBytes(StandardCharsets.UTF_8).length;
      for (int cut = 0; cut <= len; cut++) {
        assertThat(filter(s[0], cut)).as("cut at %d of %d", cut, len).isEqualTo(s[1]);
      }
    }
  }

  @Test
  void everySplitIntoThreeChunksAroundTheUsageEvent() {
    for (String[] s : new String[][] {{STREAM, EXPECTED}, {crlf(STREAM), crlf(EXPECTED)}}) {
      String before = s[0].substring(0, s[0].indexOf("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[]"));
      int start = before.getBytes(StandardCharsets.UTF_8).length - 3;
      int len = s[0].getBytes(StandardCharsets.UTF_8).length;
      for (int a = start; a <= len; a++) {
        for (int b = a; b <= len; b++) {
          assertThat(filter(s[0], a, b)).as("cuts at %d and %d", a, b).isEqualTo(s[1]);
        }
      }
    }
  }

  @Test
  void oneByteAtATime() {
    for (String[] s : new String[][] {{STREAM, EXPECTED}, {crlf(STREAM), crlf(EXPECTED)}}) {
      int len = s[0].getBytes(StandardCharsets.UTF_8).length;
      int[] cuts = new int[len - 1];
      for (int i = 0; i < cuts.length; i++) {
        cuts[i] = i + 1;
      }
      assertThat(filter(s[0], cuts)).isEqualTo(s[1]);
    }
  }

  @Test
  void eachEventGoesOutAsSoonAsItsEndArrives() {
    UsageChunkFilter f = new UsageChunkFilter();
    String half = TOKEN.substring(0, 20);
    assertThat(f.filter(Buffer.buffer(ROLE + half)).toString()).isEqualTo(ROLE);
    assertThat(f.filter(Buffer.buffer(TOKEN.substring(20))).toString()).isEqualTo(TOKEN);
    assertThat(f.filter(Buffer.buffer(USAGE)).length()).isZero();
    assertThat(f.filter(Buffer.buffer(DONE)).toString()).isEqualTo(DONE);
  }

  @Test
  void anEventLongerThanTheHoldLimitPassesAsItComesAndTheUsageChunkAfterItIsStillRemoved() {
    UsageChunkFilter f = new UsageChunkFilter();
    String big = "data: {\"choices\":[{\"delta\":{\"content\":\"" + "x".repeat(UsageChunkFilter.MAX_HELD) + "\"}}]}\n\n";
    String first = big.substring(0, UsageChunkFilter.MAX_HELD + 10);
    assertThat(f.filter(Buffer.buffer(first)).toString()).as("not held past the limit").isEqualTo(first);
    assertThat(f.filter(Buffer.buffer("x")).toString()).as("the rest of that event passes at once").isEqualTo("x");
    String rest = big.substring(UsageChunkFilter.MAX_HELD + 10);
    assertThat(f.filter(Buffer.buffer(rest.substring(1) + USAGE + DONE)).toString()).isEqualTo(rest.substring(1) + DONE);
    // a single-LF backend (no blank lines) is never held without bound either
    UsageChunkFilter g = new UsageChunkFilter();
    String lines = "data: {\"a\":1}\n".repeat(2_000);
    Buffer out = Buffer.buffer().appendBuffer(g.filter(Buffer.buffer(lines))).appendBuffer(g.filter(Buffer.buffer(lines)));
    assertThat(out.length() + g.rest().length()).isEqualTo(2 * lines.length());
    assertThat(out.length()).isGreaterThanOrEqualTo(2 * lines.length() - UsageChunkFilter.MAX_HELD);
  }

  @Test
  void aStreamCutShortGivesBackWhatWasHeld() {
    UsageChunkFilter f = new UsageChunkFilter();
    assertThat(f.filter(Buffer.buffer(ROLE + "data: {\"id\":")).toString()).isEqualTo(ROLE);
    assertThat(f.rest().toString()).isEqualTo("data: {\"id\":");
    assertThat(f.rest().length()).isZero();
  }

  @Test
  void completionsAndSpacingVariants() {
    String usage = "data:{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\": [ ],\"usage\" : {\"prompt_tokens\":1}}\n\n";
    String token = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\" a\"}]}\n\n";
    assertThat(filter(token + usage + DONE)).isEqualTo(token + DONE);
    // an error event or an event without choices is no usage chunk
    String error = "data: {\"error\":{\"message\":\"x\"},\"usage\":{\"prompt_tokens\":1}}\n\n";
    assertThat(filter(token + error + DONE)).isEqualTo(token + error + DONE);
  }
}
