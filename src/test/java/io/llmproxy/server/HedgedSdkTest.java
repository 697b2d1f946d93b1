package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.HttpResponseFor;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.TestGateway;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * Issue 6, acceptance 8: the official OpenAI Java SDK streams through a hedged request without
 * noticing it. The primary sends its head and role chunk at once and then stalls; the hedge wins at
 * its first token, and the SDK sees one well-formed stream, from the winner alone.
 */
class HedgedSdkTest {
  private static final String YAML = """
      backends:
        - {url: "${SIM0}", name: a, weight: 100}
        - {url: "${SIM1}", name: b}
      routing:
        fallback: [{primary: a, fallback: [b]}]
        hedge: {enabled: true, cold_start_race: false, threshold: 50ms, min_threshold: 1ms, max_parallel: 2,
                budget_percent: 100}
      health_check: {enabled: false}
      outlier_detection: {enabled: false}
      """;

  @Test
  void theSdkStreamsTheWinnersTextFromAHedgedRequest() {
    SimulatorOptions base = SimulatorOptions.defaults().withItl(Duration.ofMillis(5)).withTokens(8);
    try (TestGateway gw = TestGateway.start(YAML,
        base.withName("a").withEarlyHeaders(true).withTtft(Duration.ofSeconds(3)),
        base.withName("b").withTtft(Duration.ofMillis(20)))) {
      OpenAIClient client = OpenAIOkHttpClient.builder()
          .baseUrl(gw.url() + "/v1")
          .apiKey("test")
          .maxRetries(0)
          .timeout(Duration.ofSeconds(10))
          .build();
      try {
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder()
            .model("m").addUserMessage("Say hello").build();
        List<ChatCompletionChunk> chunks;
        long sent = System.nanoTime();
        HttpResponseFor<StreamResponse<ChatCompletionChunk>> raw =
            client.chat().completions().withRawResponse().createStreaming(params);
        try (StreamResponse<ChatCompletionChunk> stream = raw.parse()) {
          chunks = stream.stream().toList();
        }

        String text = chunks.stream().flatMap(c -> c.choices().stream())
            .map(ch -> ch.delta().content().orElse("")).collect(Collectors.joining());
        assertThat(text).isEqualTo(" Hello from b, the simulated backend.");
        assertThat(chunks).extracting(ChatCompletionChunk::id).as("one stream, one id").containsOnly(chunks.get(0).id());
        assertThat(chunks.stream().filter(c -> !c.choices().isEmpty() && c.choices().get(0).delta().role().isPresent()))
            .as("role chunks: the winner's only").hasSize(1);
        ChatCompletionChunk last = chunks.get(chunks.size() - 1);
        assertThat(last.choices().get(0).finishReason()).hasValue(ChatCompletionChunk.Choice.FinishReason.STOP);
        assertThat(raw.statusCode()).isEqualTo(200);
        assertThat(raw.headers().values("x-llmproxy-hedged")).containsExactly("true");
        assertThat(raw.headers().values("x-llmproxy-backend")).containsExactly("b");

        // The request was hedged: the primary got it, sent its role chunk and was cut off; b answered.
        await().atMost(Duration.ofSeconds(2)).until(() -> gw.posts(0).size() == 1 && gw.posts(0).get(0).clientDisconnected());
        RequestRecord a = gw.posts(0).get(0);
        assertThat(a.chunksSent()).isEqualTo(1);
        assertThat(a.completed()).isFalse();
        assertThat(gw.posts(1)).singleElement().satisfies(b -> {
          assertThat(b.completed()).isTrue();
          assertThat(b.clientDisconnected()).isFalse();
          // Sent at the threshold, not with the primary. Timed from the client's send, as the
          // gateway's timer is, not from the primary's arrival at its backend, which a connect and,
          // in a fresh JVM, the simulator's first run can delay (the hedge came 31 and 39 ms after it).
          assertThat(b.receivedAtNanos() - sent).as("ns from the client's send to the hedge's arrival, threshold 50 ms")
              .isGreaterThanOrEqualTo(45_000_000L);
        });
        await().atMost(Duration.ofSeconds(2)).untilAsserted(() -> {
          Scrape m = Scrape.of(gw);
          assertThat(m.value("llmproxy_hedges_total", "outcome", "sent")).isEqualTo(1);
          assertThat(m.value("llmproxy_hedges_total", "outcome", "won")).isEqualTo(1);
          assertThat(m.value("llmproxy_cancelled_upstream_total", "reason", "hedge_loser")).isEqualTo(1);
        });
      } finally {
        client.close();
      }
    }
  }
}
