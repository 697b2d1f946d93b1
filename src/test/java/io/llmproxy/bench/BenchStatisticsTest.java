package io.llmproxy.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.buffer.Buffer;
import java.net.URI;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The load generator's statistics: what counts as a token, how gaps and percentiles come out. */
class BenchStatisticsTest {
  private static final long MS = 1_000_000;
  private static final String ROLE = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
      + "\"finish_reason\":null}]}\n\n";
  private static final BenchSettings SETTINGS =
      BenchSettings.closedLoop(URI.create("http://127.0.0.1:1"), true, 1, Duration.ofSeconds(2));

  private static String token(String text, String finish) {
    return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + text + "\"},\"finish_reason\":"
        + (finish == null ? "null" : "\"" + finish + "\"") + "}]}\n\n";
  }

  private static Buffer b(String s) {
    return Buffer.buffer(s);
  }

  @Test
  void ttftIsTheFirstTokenEventNotTheRoleChunkOrTheHeaders() {
    Recorder r = new Recorder();
    ResponseTimer t = new ResponseTimer(0, "text/event-stream; charset=utf-8");
    t.chunk(b(ROLE), 5 * MS, r);
    assertThat(r.ttft.getTotalCount()).isZero();
    t.chunk(b(token(" Hello", null)), 100 * MS, r);
    assertThat(r.ttft.getTotalCount()).isOne();
    assertThat(r.ttft.getMaxValue()).isEqualTo(r.ttft.highestEquivalentValue(100_000));
  }

  @Test
  void gapsAreBetweenTokenEventsAndEventsReadTogetherAreGapsOfZero() {
    Recorder r = new Recorder();
    ResponseTimer t = new ResponseTimer(0, "text/event-stream");
    t.chunk(b(ROLE + token("a", null)), 100 * MS, r);
    t.chunk(b(token("b", null)), 120 * MS, r);
    // an event split across two reads counts when it is complete
    String c = token("c", null);
    t.chunk(b(c.substring(0, 10)), 130 * MS, r);
    t.chunk(b(c.substring(10)), 140 * MS, r);
    // two events in one read: the second is a gap of zero (batching shows)
    t.chunk(b(token("d", null) + token("e", "stop")), 160 * MS, r);
    // usage and [DONE] are not tokens
    t.chunk(b("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\ndata: [DONE]\n\n"),
        161 * MS, r);
    t.end(162 * MS, r);

    assertThat(r.itl.getTotalCount()).isEqualTo(4);
    assertThat(r.itl.getValueAtPercentile(1)).isZero();
    assertThat(r.itl.getMaxValue()).isEqualTo(r.itl.highestEquivalentValue(20_000));
    assertThat(r.itl.getMean()).isCloseTo((20_000 + 20_000 + 20_000 + 0) / 4.0, within(50.0));
    assertThat(r.requests).isOne();
    assertThat(r.outputTokens).as("from the usage").isEqualTo(5);
    assertThat(r.outputEvents).isEqualTo(5);
    assertThat(r.latency.getMaxValue()).isEqualTo(r.latency.highestEquivalentValue(162_000));
  }

  @Test
  void withoutUsageTheTokenEventsAreTheOutputTokens() {
    Recorder r = new Recorder();
    ResponseTimer t = new ResponseTimer(0, "text/event-stream");
    t.chunk(b(ROLE + token("a", null) + token("b", "length") + "data: [DONE]\n\n"), 10 * MS, r);
    t.end(11 * MS, r);
    assertThat(r.outputTokens).isEqualTo(2);
  }

  @Test
  void aResponseThatIsNotAStreamHasItsFirstByteAsTtftAndNoGaps() {
    Recorder r = new Recorder();
    ResponseTimer t = new ResponseTimer(0, "application/json");
    t.chunk(b("{\"choices\":[{\"message\":{\"content\":\"hi\"}}],"), 30 * MS, r);
    t.chunk(b("\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":7}}"), 31 * MS, r);
    t.end(31 * MS, r);
    assertThat(r.ttft.getMaxValue()).isEqualTo(r.ttft.highestEquivalentValue(30_000));
    assertThat(r.itl.getTotalCount()).isZero();
    assertThat(r.outputTokens).isEqualTo(7);
  }

  @Test
  void nothingIsRecordedForAnUnmeasuredRequest() {
    ResponseTimer t = new ResponseTimer(0, "text/event-stream");
    t.chunk(b(token("a", null) + token("b", null)), 10 * MS, null);
    t.end(11 * MS, null);
    assertThat(t.firstTokenNanos()).isEqualTo(10 * MS);
  }

  @Test
  void recordersMergeAndTheResultReportsPercentilesAndRates() throws Exception {
    Recorder a = new Recorder();
    Recorder b = new Recorder();
    for (int i = 1; i <= 100; i++) {
      (i % 2 == 0 ? a : b).ok(i * MS, 10, 10);
      (i % 2 == 0 ? a : b).ttft(i * MS);
    }
    a.error("http_503");
    b.error("http_503");
    b.error("reset");
    a.merge(b);
    BenchResult result = new BenchResult(SETTINGS, a, 2.0);

    assertThat(result.requests()).isEqualTo(100);
    assertThat(result.requestsPerSecond()).isEqualTo(50.0);
    assertThat(result.outputTokensPerSecond()).isEqualTo(500.0);
    assertThat(result.errors()).isEqualTo(3);
    assertThat(result.errorsByKind()).containsEntry("http_503", 2L).containsEntry("reset", 1L);
    assertThat(BenchResult.ms(result.latencyMicros(), 50)).isCloseTo(50.0, within(0.1));
    assertThat(BenchResult.ms(result.latencyMicros(), 99)).isCloseTo(99.0, within(0.1));
    assertThat(BenchResult.ms(result.latencyMicros(), 99.9)).isCloseTo(100.0, within(0.1));
    assertThat(BenchResult.ms(result.latencyMicros(), 1)).isCloseTo(1.0, within(0.01));
    assertThat(BenchResult.ms(result.itlMicros(), 50)).isNaN();

    JsonNode json = new ObjectMapper().readTree(result.json());
    assertThat(json.path("requests").asLong()).isEqualTo(100);
    assertThat(json.path("requests_per_second").asDouble()).isEqualTo(50.0);
    assertThat(json.path("errors_by_kind").path("http_503").asLong()).isEqualTo(2);
    assertThat(json.path("ttft_ms").path("p50").asDouble()).isCloseTo(50.0, within(0.1));
    assertThat(json.path("ttft_ms").path("p99_9").asDouble()).isCloseTo(100.0, within(0.1));
    assertThat(json.path("itl_ms").path("count").asLong()).isZero();
    assertThat(json.path("itl_ms").has("p50")).isFalse();

    assertThat(result.table()).contains("requests 100 (50.0/s)", "errors 3", "ttft", "latency")
        .doesNotContain("itl ");
  }

  @Test
  void theRequestBodyAsksForWhatTheSettingsSay() throws Exception {
    ObjectMapper m = new ObjectMapper();
    JsonNode chat = m.readTree(SETTINGS.withMaxTokens(100).requestBody());
    assertThat(chat.path("model").asText()).isEqualTo("sim-model");
    assertThat(chat.path("messages").get(0).path("content").asText()).hasSizeBetween(54, 64);
    assertThat(chat.path("max_tokens").asInt()).isEqualTo(100);
    assertThat(chat.path("stream").asBoolean()).isTrue();
    assertThat(chat.path("stream_options").path("include_usage").asBoolean()).isTrue();

    BenchSettings completions = new BenchSettings(URI.create("http://h:1"), "/v1/completions", "m", false, 1, 0,
        false, 0, Duration.ofSeconds(1), Duration.ZERO, Duration.ZERO, 0, 600, true, null);
    JsonNode c = m.readTree(completions.requestBody());
    assertThat(c.path("prompt").asText()).hasSizeBetween(594, 600);
    assertThat(c.has("messages")).isFalse();
    assertThat(c.has("max_tokens")).isFalse();
    assertThat(c.has("stream_options")).isFalse();
  }
}
