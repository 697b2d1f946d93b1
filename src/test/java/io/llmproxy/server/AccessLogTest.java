package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.Scrape;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestGateway;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AccessLogTest {
  private static final AccessLog.Entry ENTRY = new AccessLog.Entry(1_768_384_800_007L, "req_1", "POST", "/v1/chat/completions",
      "10.0.0.1", "llama \"3\"", "llama-3-instruct", "gpu-1", 2, false, 200, true, 12.3456, 99.5, 10, 20, 1234, null, "研发部门", "dept_dev");

  @Test
  void jsonLineHasTheSpecFields() throws Exception {
    JsonNode n = new ObjectMapper().readTree(AccessLog.toJson(ENTRY));
    assertThat(n.path("request_id").asText()).isEqualTo("req_1");
    assertThat(n.path("model").asText()).isEqualTo("llama \"3\"");
    assertThat(n.path("model_sent").asText()).isEqualTo("llama-3-instruct");
    assertThat(n.path("attempts").asInt()).isEqualTo(2);
    assertThat(n.path("ttft_ms").asDouble()).isEqualTo(12.346);
    assertThat(n.path("prompt_tokens").asLong()).isEqualTo(10);
    assertThat(n.path("time").asText()).isEqualTo("2026-01-14T10:00:00.007Z");
    assertThat(n.has("error")).isFalse();
    assertThat(n.path("key_name").asText()).isEqualTo("研发部门");
    assertThat(n.path("user_id").asText()).isEqualTo("dept_dev");
  }

  @Test
  void everyStringIsEscapedAsJsonRequires() throws Exception {
    String nasty = "a\"b\\c\nd\te\u0001f/ü中";
    AccessLog.Entry e = new AccessLog.Entry(0, nasty, "POST", nasty, null, nasty, null, null, 1, true, 502, false,
        -1, 1.5, -1, -1, 0, nasty, nasty, null);
    JsonNode n = new ObjectMapper().readTree(AccessLog.toJson(e));
    assertThat(n.path("request_id").asText()).isEqualTo(nasty);
    assertThat(n.path("path").asText()).isEqualTo(nasty);
    assertThat(n.path("error").asText()).isEqualTo(nasty);
    assertThat(n.path("key_name").asText()).isEqualTo(nasty);
    assertThat(n.path("client_ip").isNull()).isTrue();
    assertThat(n.has("ttft_ms")).isFalse();
    assertThat(n.path("latency_ms").asDouble()).isEqualTo(1.5);
    assertThat(n.path("hedged").asBoolean()).isTrue();
  }

  @Test
  void theTextLineEscapesControlCharactersSoAValueCannotStartALine() {
    String forged = "m\n2026-01-14T10:00:00.000Z access request_id=forged\u0001";
    AccessLog.Entry e = new AccessLog.Entry(0, "req_1", "POST", "/v1/chat/completions", "10.0.0.1", forged, null, null,
        1, false, 404, false, -1, 1.5, -1, -1, 0, "model_not_found: The model '" + forged + "' does not exist.", null, null);
    String line = AccessLog.toText(e);
    assertThat(line).doesNotContain("\n").doesNotContain("\u0001")
        .contains(" model=m\\n2026-01-14T10:00:00.000Z access request_id=forged\\u0001 model_sent=null")
        .contains(" error=\"model_not_found: The model 'm\\n2026");
  }

  @Test
  void numbersAndTextOutsideTheBasicPlaneAreWrittenAsJsonReadsThem() throws Exception {
    String emoji = "model-\uD83D\uDE80-\u00e9";
    AccessLog.Entry e = new AccessLog.Entry(0, "r", "POST", "/", null, emoji, null, null, 1, false, 200, true,
        0.0004, 12_345_678.9, Long.MAX_VALUE, 0, 0, null, null, null);
    String json = AccessLog.toJson(e);
    JsonNode n = new ObjectMapper().readTree(json);
    assertThat(n.path("model").asText()).isEqualTo(emoji);
    assertThat(json).contains("\"ttft_ms\":0.0,").contains("\"latency_ms\":12345678.9,")
        .contains("\"prompt_tokens\":" + Long.MAX_VALUE + ",").contains("\"completion_tokens\":0,");
    assertThat(new LogLine(4).millis(2).toString()).isEqualTo("2.0");
    assertThat(new LogLine(4).millis(1.05).toString()).isEqualTo("1.05");
    assertThat(new LogLine(4).millis(-3.25).toString()).isEqualTo("-3.25");
    assertThat(new LogLine(4).num(-120).toString()).isEqualTo("-120");
  }

  @Test
  void timestampsKeepMilliseconds() {
    assertThat(AccessLog.isoMillis(1_768_384_800_007L)).isEqualTo("2026-01-14T10:00:00.007Z");
    assertThat(AccessLog.isoMillis(1_768_384_801_999L)).isEqualTo("2026-01-14T10:00:01.999Z");
    assertThat(AccessLog.isoMillis(1_768_384_800_120L)).isEqualTo("2026-01-14T10:00:00.120Z");
  }

  @Test
  void linesAreWrittenInBatchesAndAllArriveOnClose() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    AccessLog log = new AccessLog(true, true, out);
    for (int i = 0; i < 1000; i++) {
      log.log(ENTRY);
    }
    await().atMost(Duration.ofSeconds(5)).until(() -> lines(out) >= 1);
    log.close();
    assertThat(lines(out)).isEqualTo(1000);
    assertThat(log.dropped()).isZero();
  }

  @Test
  void eachThreadsLinesArriveWholeAndInTheirOrder() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    AccessLog log = new AccessLog(true, true, out);
    int threads = 4;
    int each = 2_000;
    Thread[] writers = new Thread[threads];
    for (int t = 0; t < threads; t++) {
      String prefix = "t" + t + "-";
      writers[t] = new Thread(() -> {
        for (int i = 0; i < each; i++) {
          log.log(withRequestId(prefix + i));
        }
      });
      writers[t].start();
    }
    for (Thread w : writers) {
      w.join();
    }
    log.close();
    ObjectMapper json = new ObjectMapper();
    int[] next = new int[threads];
    for (String line : out.toString(StandardCharsets.UTF_8).split("\n")) {
      String id = json.readTree(line).path("request_id").asText();
      int t = id.charAt(1) - '0';
      assertThat(id).as("thread %d's lines in order", t).isEqualTo("t" + t + "-" + next[t]);
      next[t]++;
    }
    assertThat(next).containsOnly(each);
    assertThat(log.dropped()).isZero();
  }

  @Test
  void whenTheOutputIsStuckLinesAreDroppedAndCountedWithoutBlockingTheCaller() throws Exception {
    CountDownLatch stuck = new CountDownLatch(1);
    ByteArrayOutputStream written = new ByteArrayOutputStream();
    OutputStream out = new OutputStream() {
      @Override
      public void write(int b) {
        throw new UnsupportedOperationException();
      }

      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        try {
          stuck.await();
        } catch (InterruptedException e) {
          throw new InterruptedIOException();
        }
        written.write(b, off, len);
      }
    };
    AccessLog log = new AccessLog(true, true, out);
    // more than two buffers' worth: the one the writer is stuck writing, and the one that fills meanwhile
    int lines = 3 * AccessLogWriter.MAX_PENDING_BYTES / AccessLog.toJson(ENTRY).length();
    for (int i = 0; i < lines; i++) {
      log.log(ENTRY); // returns although nothing can be written
    }
    long dropped = log.dropped();
    assertThat(dropped).isPositive();
    stuck.countDown();
    log.close();
    long arrived = written.toString(StandardCharsets.UTF_8).lines().count();
    assertThat(arrived + log.dropped()).isEqualTo(lines);
    assertThat(log.dropped()).isEqualTo(dropped);
  }

  /**
   * With {@code auth.trusted_proxies}, the line's client IP is the client behind the proxy, as
   * X-Forwarded-For names it, for every request (not only those of keys with {@code allowed_ips}).
   */
  @Test
  void behindATrustedProxyTheLineNamesTheForwardedClient() throws Exception {
    String yaml = """
        backends:
          - url: "${SIM0}"
            name: a
            models: ["sim-model"]
        auth:
          trusted_proxies: ["127.0.0.1/32"]
        health_check: {enabled: false}
        """;
    try (TestGateway gw = TestGateway.builder(yaml).captureAccessLog()
        .start(SimulatorOptions.defaults().withTtft(Duration.ofMillis(1)).withItl(Duration.ZERO).withTokens(2))) {
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("sim-model", false),
          "x-forwarded-for", "203.0.113.7", "x-request-id", "req-forwarded").status()).isEqualTo(200);
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("no-such-model", false),
          "x-forwarded-for", "198.51.100.9, 203.0.113.8", "x-request-id", "req-forwarded-404").status()).isEqualTo(404);
      assertThat(gw.client.post("/v1/chat/completions", TestClient.chat("sim-model", false),
          "x-request-id", "req-direct").status()).isEqualTo(200);

      await().atMost(Duration.ofSeconds(5)).until(() -> gw.accessLog().contains("req-direct"));
      ObjectMapper json = new ObjectMapper();
      Map<String, String> ipByRequest = new HashMap<>();
      for (String line : gw.accessLog().lines().filter(l -> l.contains("\"type\":\"access\"")).toList()) {
        JsonNode n = json.readTree(line);
        ipByRequest.put(n.path("request_id").asText(), n.path("client_ip").asText());
      }
      assertThat(ipByRequest).containsEntry("req-forwarded", "203.0.113.7")
          .containsEntry("req-forwarded-404", "203.0.113.8")
          .containsEntry("req-direct", "127.0.0.1");
    }
  }

  /**
   * The answers the gateway gives itself, with no backend (the model list, one model, a refused key,
   * an unknown path), have their line, count and x-request-id too: a key probing /v1/models shows.
   */
  @Test
  void theGatewaysOwnAnswersAreLoggedAndCounted(@TempDir Path data) throws Exception {
    String yaml = """
        backends:
          - url: "${SIM0}"
            models: ["sim-model"]
        auth: {enabled: true}
        api_keys:
          - {key: "sk-llmproxy-logged-001", name: logged, user_id: u7}
        data_dir: "${DATA}"
        health_check: {enabled: false}
        """;
    try (TestGateway gw = TestGateway.builder(yaml).vars(Map.of("DATA", data.toString())).captureAccessLog()
        .start(SimulatorOptions.defaults())) {
      TestClient.Response list = gw.client.get("/v1/models", "authorization", "Bearer sk-llmproxy-logged-001",
          "x-request-id", "req-list");
      assertThat(list.status()).isEqualTo(200);
      assertThat(list.header("x-request-id")).isEqualTo("req-list");
      assertThat(gw.client.get("/v1/models/sim-model", "authorization", "Bearer sk-llmproxy-logged-001",
          "x-request-id", "req-one").status()).isEqualTo(200);
      assertThat(gw.client.get("/v1/models", "authorization", "Bearer sk-llmproxy-wrong-0001",
          "x-request-id", "req-probe").status()).isEqualTo(401);
      assertThat(gw.client.get("/nowhere", "x-request-id", "req-lost").status()).isEqualTo(404);
      assertThat(gw.client.get("/health").header("x-request-id")).isNotEmpty();

      await().atMost(Duration.ofSeconds(5)).until(() -> gw.accessLog().contains("req-lost"));
      ObjectMapper json = new ObjectMapper();
      Map<String, JsonNode> byId = new HashMap<>();
      for (String line : gw.accessLog().lines().filter(l -> l.contains("\"type\":\"access\"")).toList()) {
        JsonNode n = json.readTree(line);
        byId.put(n.path("request_id").asText(), n);
      }
      assertThat(byId.get("req-list").path("status").asInt()).isEqualTo(200);
      assertThat(byId.get("req-list").path("key_name").asText()).isEqualTo("logged");
      assertThat(byId.get("req-one").path("path").asText()).isEqualTo("/v1/models/sim-model");
      assertThat(byId.get("req-probe").path("status").asInt()).isEqualTo(401);
      assertThat(byId.get("req-probe").path("error").asText()).startsWith("invalid_api_key");
      assertThat(byId.get("req-lost").path("status").asInt()).isEqualTo(404);
      assertThat(gw.accessLog()).doesNotContain("sk-llmproxy-wrong-0001").doesNotContain("sk-llmproxy-logged-001");
      assertThat(Scrape.of(gw).value("llmproxy_requests_total", "status", "401")).isEqualTo(1);
    }
  }

  private static AccessLog.Entry withRequestId(String id) {
    return new AccessLog.Entry(ENTRY.timeMillis(), id, ENTRY.method(), ENTRY.path(), ENTRY.clientIp(), ENTRY.model(),
        ENTRY.modelSent(), ENTRY.backend(), ENTRY.attempts(), ENTRY.hedged(), ENTRY.status(), ENTRY.stream(),
        ENTRY.ttftMs(), ENTRY.latencyMs(), ENTRY.promptTokens(), ENTRY.completionTokens(), ENTRY.bytesOut(),
        ENTRY.error(), ENTRY.keyName(), ENTRY.userId());
  }

  private static long lines(ByteArrayOutputStream out) {
    synchronized (out) {
      return out.toString(StandardCharsets.UTF_8).lines().count();
    }
  }
}
