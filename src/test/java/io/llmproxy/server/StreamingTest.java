package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.ScriptedBackend;
import io.llmproxy.testing.ScriptedBackend.Step;
import io.llmproxy.testing.TestClient;
import io.llmproxy.testing.TestClient.Event;
import io.llmproxy.testing.TestClient.Streamed;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Acceptance 1: zero-buffer streaming. */
class StreamingTest {

  @Test
  void everyEventPassesTheMomentItArrives() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                models: ["sim-model"]
            health_check: {enabled: false}
            """,
        SimulatorOptions.defaults().withTtft(Duration.ofMillis(50)).withItl(Duration.ofMillis(50)).withTokens(12))) {
      String request =
          "{\"model\":\"sim-model\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[]}";
      // Warm up class loading and the JIT on a fast stream first: a cold start is not batching.
      SimulatorOptions measured = gw.sim(0).options();
      gw.sim(0).options(measured.withTtft(Duration.ofMillis(1)).withItl(Duration.ofMillis(1)));
      for (int i = 0; i < 30; i++) {
        gw.client.stream("/v1/chat/completions", request);
      }
      gw.sim(0).options(measured);
      Streamed s = gw.client.stream("/v1/chat/completions", request);
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.events().stream().filter(Event::isContent)).hasSize(12);
      RequestRecord seen = gw.posts(0).get(30);
      assertThat(s.heldBack(seen.chunkSentAtNanos(), Duration.ofMillis(25)))
          .as("events held until the next was sent").isEmpty();
      List<Event> all = s.events();
      assertThat(all.get(all.size() - 1).data()).isEqualTo("[DONE]");
      assertThat(all.get(all.size() - 2).data()).contains("\"usage\"");
      assertThat(seen.completed()).isTrue();
      assertThat(seen.chunksSent()).isEqualTo(all.size());
    }
  }

  @Test
  void bytesReachTheClientUnchanged() {
    // CRLF line ends, a comment, event/id fields, a 200 KB line, and a multi-byte character split
    // between two writes: all must pass byte for byte, each write as it comes.
    byte[] snowman = "☃".getBytes(StandardCharsets.UTF_8);
    String big = "x".repeat(200_000);
    List<Step> script = new ArrayList<>(List.of(
        new Step(0, Buffer.buffer(": hello\r\n\r\n")),
        new Step(30, Buffer.buffer("event: message\r\nid: 1\r\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n")),
        new Step(30, Buffer.buffer("data: {\"choices\":[{\"delta\":{\"content\":\"").appendBytes(snowman, 0, 1)),
        new Step(60, Buffer.buffer().appendBytes(snowman, 1, 2).appendString("\"}}]}\n\n")),
        new Step(60, Buffer.buffer("data: {\"choices\":[{\"delta\":{\"content\":\"" + big + "\"}}]}\n\n")),
        new Step(60, Buffer.buffer("data: [DONE]\n\n"))));
    Buffer expected = Buffer.buffer();
    script.forEach(st -> expected.appendBuffer(st.bytes()));
    String request = "{\"model\":\"anything\",  \"stream\" : true, \"messages\":[{\"content\":\"naïve ✓\"}]}";

    Vertx vertx = Vertx.vertx();
    try (ScriptedBackend scripted = ScriptedBackend.start(vertx, "text/event-stream", script);
        TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SCRIPTED}"
            health_check: {enabled: false}
            """, Map.of("SCRIPTED", scripted.url()))) {
      Streamed s = gw.client.stream("/v1/chat/completions", request);
      assertThat(s.status()).isEqualTo(200);
      assertThat(s.body().getBytes()).isEqualTo(expected.getBytes());
      assertThat(scripted.receivedBodies).singleElement()
          .satisfies(b -> assertThat(b.getBytes()).isEqualTo(request.getBytes(StandardCharsets.UTF_8)));
      // The half character was not held back to complete it: the writes 60 ms apart arrived apart.
      long firstHalf = s.chunks().stream().filter(c -> c.data().toString(StandardCharsets.ISO_8859_1)
          .contains("\"content\":\"")).findFirst().orElseThrow().atNanos();
      long done = s.chunks().get(s.chunks().size() - 1).atNanos();
      assertThat((done - firstHalf) / 1_000_000).isGreaterThanOrEqualTo(150);
    } finally {
      TestGateway.await(vertx.close());
    }
  }

  @Test
  void nonStreamingBodyIsUnchangedAndUsageIsRead() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            health_check: {enabled: false}
            """,
        SimulatorOptions.defaults().withTtft(Duration.ofMillis(5)).withItl(Duration.ZERO).withTokens(7))) {
      TestClient.Response r = gw.client.post("/v1/chat/completions", TestClient.chat("m", false));
      assertThat(r.status()).isEqualTo(200);
      assertThat(r.json().getJsonObject("usage").getInteger("completion_tokens")).isEqualTo(7);
      assertThat(r.header("x-llmproxy-backend")).isNotBlank();
      assertThat(r.header("x-request-id")).startsWith("req_");
      // Counted just after the response ends, on the gateway's event loop.
      await().atMost(Duration.ofSeconds(5))
          .until(() -> gw.gateway.metrics().scrape().contains("llmproxy_tokens_total{backend=\"127.0.0.1:"));
    }
  }

  @Test
  void clientRequestIdIsKeptAndSentUpstream() {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
            health_check: {enabled: false}
            """, SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1))) {
      TestClient.Response r = gw.client.post("/v1/completions", "{\"model\":\"m\",\"prompt\":\"x\"}",
          "x-request-id", "abc-123");
      assertThat(r.header("x-request-id")).isEqualTo("abc-123");
      assertThat(gw.posts(0).get(0).header("x-request-id")).isEqualTo("abc-123");
    }
  }
}
