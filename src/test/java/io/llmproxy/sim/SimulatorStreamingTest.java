package io.llmproxy.sim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class SimulatorStreamingTest extends SimTestBase {

  private static final Pattern CREATED = Pattern.compile("\"created\":(\\d+)");

  private static String created(String body) {
    Matcher m = CREATED.matcher(body);
    assertThat(m.find()).as("created in %s", body).isTrue();
    return m.group(1);
  }

  @Test
  void chatStreamHasTheExactVllmShape() {
    start(fast().withTokens(3).withModels("sim-model"));
    TestHttp.Reply reply = http.post(url("/v1/chat/completions"),
        "{\"model\":\"llama-3\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");

    assertThat(reply.status()).isEqualTo(200);
    assertThat(reply.headers().get("content-type")).isEqualTo("text/event-stream; charset=utf-8");
    assertThat(reply.headers().get("transfer-encoding")).isEqualTo("chunked");
    RequestRecord r = only("/v1/chat/completions");
    String head = "data: {\"id\":\"chatcmpl-" + r.id()
        + "\",\"object\":\"chat.completion.chunk\",\"created\":" + created(reply.body())
        + ",\"model\":\"llama-3\",\"choices\":[";
    int prompt = r.body().length / 4;
    assertThat(reply.body()).isEqualTo(
        head + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
            + "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        + head + "{\"index\":0,\"delta\":{\"content\":\" Hello\"},"
            + "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        + head + "{\"index\":0,\"delta\":{\"content\":\" from\"},"
            + "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        + head + "{\"index\":0,\"delta\":{\"content\":\" sim\"},"
            + "\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"
        + head + "],\"usage\":{\"prompt_tokens\":" + prompt + ",\"total_tokens\":" + (prompt + 3)
            + ",\"completion_tokens\":3}}\n\n"
        + "data: [DONE]\n\n");
    assertThat(r.model()).isEqualTo("llama-3");
    assertThat(r.stream()).isTrue();
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.completed()).isTrue();
    assertThat(r.clientDisconnected()).isFalse();
    assertThat(r.chunksSent()).isEqualTo(6);
    assertThat(r.chunkSentAtNanos()).hasSize(6);
  }

  @Test
  void noUsageChunkUnlessAskedFor() {
    start(fast());
    String body = http.post(url("/v1/chat/completions"),
        "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":false}}").body();

    assertThat(body).doesNotContain("usage").endsWith("}]}\n\ndata: [DONE]\n\n");
    assertThat(only("/v1/chat/completions").chunksSent()).isEqualTo(1 + 4 + 1);
  }

  @Test
  void maxTokensWinsAndFinishesWithLength() {
    start(fast().withTokens(2));
    String body = http.post(url("/v1/chat/completions"),
        "{\"model\":\"m\",\"stream\":true,\"max_tokens\":9}").body();

    assertThat(body.split("\"delta\":\\{\"content\"", -1)).hasSize(9 + 1);
    assertThat(body).contains("\"delta\":{\"content\":\" Hello\"},\"logprobs\":null,"
        + "\"finish_reason\":\"length\"}]}\n\ndata: [DONE]");
    assertThat(body.split("finish_reason\":\"", -1)).hasSize(2);

    String completion = http.post(url("/v1/chat/completions"),
        "{\"model\":\"m\",\"stream\":true,\"max_tokens\":50,\"max_completion_tokens\":3}").body();
    assertThat(completion.split("\"delta\":\\{\"content\"", -1)).hasSize(3 + 1);
  }

  @Test
  void completionStreamHasNoRoleChunk() {
    start(fast().withTokens(2));
    TestHttp.Reply reply = http.post(url("/v1/completions"),
        "{\"model\":\"m\",\"prompt\":\"hi\",\"stream\":true,\"max_tokens\":2}");

    RequestRecord r = only("/v1/completions");
    String head = "data: {\"id\":\"cmpl-" + r.id() + "\",\"object\":\"text_completion\",\"created\":"
        + created(reply.body()) + ",\"model\":\"m\",\"choices\":[";
    assertThat(reply.body()).isEqualTo(
        head + "{\"index\":0,\"text\":\" Hello\",\"logprobs\":null,\"finish_reason\":null,"
            + "\"stop_reason\":null}]}\n\n"
        + head + "{\"index\":0,\"text\":\" from\",\"logprobs\":null,\"finish_reason\":\"length\","
            + "\"stop_reason\":null}]}\n\n"
        + "data: [DONE]\n\n");
    assertThat(r.chunksSent()).isEqualTo(3);
  }

  @Test
  void tgiStreamCarriesTheGeneratedTextLast() {
    start(fast().withName("tgi"));
    TestHttp.Reply reply = http.post(url("/generate_stream"),
        "{\"inputs\":\"hi\",\"parameters\":{\"max_new_tokens\":3}}");

    assertThat(reply.status()).isEqualTo(200);
    assertThat(reply.headers().get("content-type")).startsWith("text/event-stream");
    assertThat(reply.body()).isEqualTo(
        "data:{\"index\":0,\"token\":{\"id\":0,\"text\":\" Hello\",\"logprob\":-0.1,"
            + "\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
        + "data:{\"index\":1,\"token\":{\"id\":1,\"text\":\" from\",\"logprob\":-0.1,"
            + "\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
        + "data:{\"index\":2,\"token\":{\"id\":2,\"text\":\" tgi\",\"logprob\":-0.1,"
            + "\"special\":false},\"generated_text\":\" Hello from tgi\",\"details\":null}\n\n");
    RequestRecord r = only("/generate_stream");
    assertThat(r.stream()).isTrue();
    assertThat(r.chunksSent()).isEqualTo(3);
  }

  @Test
  void tokenTextsCycleAndNameTheBackend() {
    start(fast().withName("gpu-\"7\"").withTokens(10));
    String body = http.post(url("/v1/completions"), "{\"model\":\"m\"}").body();

    assertThat(body).contains(
        "\"text\":\" Hello from gpu-\\\"7\\\", the simulated backend. Hello from\"");
  }

  @Test
  void nothingIsSentBeforeTheTtftThenTokensFollowTheItl() throws Exception {
    start(SimulatorOptions.defaults()
        .withTtft(Duration.ofMillis(200))
        .withItl(Duration.ofMillis(40))
        .withTokens(5));
    long sent = System.nanoTime();
    TestHttp.Streamed s = http.stream(url("/v1/chat/completions"),
        "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    s.end.get(5, TimeUnit.SECONDS);

    assertThat(s.headAtNanos - sent).as("headers not before the ttft")
        .isGreaterThanOrEqualTo(ms(195));
    RequestRecord r = only("/v1/chat/completions");
    long[] at = r.chunkSentAtNanos();
    assertThat(at).hasSize(1 + 5 + 2);
    assertThat(at[0] - r.receivedAtNanos()).as("ttft").isBetween(ms(195), ms(400));
    assertThat(at[1] - at[0]).as("role chunk and first token back to back").isLessThan(ms(15));
    for (int i = 2; i <= 5; i++) {
      assertThat(at[i] - at[i - 1]).as("itl before token %d", i).isBetween(ms(25), ms(150));
    }
    assertThat(at[5] - r.receivedAtNanos()).as("the ttft and four itls")
        .isBetween(ms(355), ms(600));
    assertThat(at[7] - at[5]).as("usage and [DONE] right after the last token")
        .isLessThan(ms(15));
  }

  @Test
  void earlyHeadersSendTheRoleChunkAtOnceAndTokensAfterTheTtft() throws Exception {
    start(fast().withTtft(Duration.ofMillis(300)).withEarlyHeaders(true).withTokens(2));
    long sent = System.nanoTime();
    TestHttp.Streamed s = http.stream(url("/v1/chat/completions"),
        "{\"model\":\"m\",\"stream\":true}");

    s.head.get(5, TimeUnit.SECONDS);
    await().atMost(Duration.ofSeconds(2)).until(() -> s.events() >= 1);
    assertThat(s.headAtNanos - sent).isLessThan(ms(200));
    assertThat(s.firstBodyAtNanos - sent).isLessThan(ms(200));
    assertThat(s.body.toString()).contains("\"role\":\"assistant\"").doesNotContain("Hello");
    RequestRecord early = only("/v1/chat/completions");
    assertThat(early.status()).isEqualTo(200);
    assertThat(early.chunksSent()).isEqualTo(1);

    s.end.get(5, TimeUnit.SECONDS);
    long[] at = only("/v1/chat/completions").chunkSentAtNanos();
    assertThat(at[1] - early.receivedAtNanos()).as("first token at the ttft")
        .isGreaterThanOrEqualTo(ms(295));
  }

  @Test
  void jitterAndTailStretchTheTtft() {
    start(fast().withTtft(Duration.ofMillis(20)).withJitter(Duration.ofMillis(10))
        .withTail(1.0, Duration.ofMillis(150)).withTokens(1));
    http.post(url("/v1/chat/completions"), "{\"stream\":true}");

    RequestRecord r = only("/v1/chat/completions");
    assertThat(r.chunkSentAtNanos()[0] - r.receivedAtNanos()).isBetween(ms(155), ms(400));
  }

  @Test
  void aFullWriteQueueHoldsTheStreamUntilTheClientReadsAgain() throws Exception {
    int tokens = 200_000;
    start(fast().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(tokens));
    TestHttp.Streamed s = http.stream(url("/v1/completions"), "{\"stream\":true}");
    s.head.get(5, TimeUnit.SECONDS).pause();

    await().atMost(Duration.ofSeconds(5)).until(() -> only("/v1/completions").chunksSent() > 100);
    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(2))
        .until(() -> only("/v1/completions").chunksSent() < tokens);

    s.head.get().resume();
    s.end.get(20, TimeUnit.SECONDS);
    assertThat(only("/v1/completions").chunksSent()).isEqualTo(tokens + 1);
    assertThat(only("/v1/completions").completed()).isTrue();
  }

  private static long ms(long millis) {
    return TimeUnit.MILLISECONDS.toNanos(millis);
  }
}
