package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.llmproxy.api.BufferRingTransport;
import io.llmproxy.config.IoTransport;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringChannelOption;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.transport.Transport;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The io_uring transport's receive-buffer ring (api/BufferRingTransport), which {@code transport: auto} takes here. */
class BufferRingTransportTest {

  private static boolean ringsHere() {
    return Transport.IO_URING != null && Transport.IO_URING.available() && IoUring.isRegisterBufferRingSupported();
  }

  @Test
  void autoAndIoUringTakeTheRingWhereTheKernelRegistersOne() {
    assumeTrue(ringsHere(), "io_uring buffer rings are not available on this kernel");

    for (IoTransport wanted : List.of(IoTransport.AUTO, IoTransport.IO_URING)) {
      Transport t = Gateway.transport(wanted);
      assertThat(t).isInstanceOf(BufferRingTransport.class);
      assertThat(t.name()).isEqualTo("io_uring");
    }
    assertThat(Gateway.transport(IoTransport.EPOLL)).isNotInstanceOf(BufferRingTransport.class);
  }

  @Test
  void onlyTheRingTransportsConnectionsReadFromTheRing() {
    assumeTrue(ringsHere(), "io_uring buffer rings are not available on this kernel");

    Bootstrap ring = new Bootstrap();
    BufferRingTransport.readFromRing(BufferRingTransport.wrap(Transport.IO_URING).implementation(), ring);
    Bootstrap plain = new Bootstrap();
    BufferRingTransport.readFromRing(Transport.IO_URING.implementation(), plain);

    assertThat(ring.config().options()).containsKey(IoUringChannelOption.IO_URING_BUFFER_GROUP_ID);
    assertThat(plain.config().options()).doesNotContainKey(IoUringChannelOption.IO_URING_BUFFER_GROUP_ID);
  }

  /**
   * More body bytes in flight at once than a loop's ring holds (48 bodies of 300 KiB against 256
   * buffers of 16 KiB), each spread over many buffers: every body reaches the backend as it was sent,
   * and every answer comes back.
   */
  @Test
  void manyLargeBodiesAtOnceCrossTheRingByteIdentical() throws Exception {
    try (TestGateway gw = TestGateway.start("""
            backends:
              - url: "${SIM0}"
                models: ["sim-model"]
            health_check: {enabled: false}
            limits: {max_body_size: 1MB}
            """, SimulatorOptions.defaults().withTokens(4))) {
      Random random = new Random(42);
      List<String> bodies = new ArrayList<>();
      List<Future<Response>> answers = new ArrayList<>();
      for (int i = 0; i < 48; i++) {
        StringBuilder text = new StringBuilder(300 * 1024);
        while (text.length() < 300 * 1024) {
          text.append((char) ('a' + random.nextInt(26)));
        }
        String body = "{\"model\":\"sim-model\",\"messages\":[{\"role\":\"user\",\"content\":\"" + i + " " + text + "\"}]}";
        bodies.add(body);
        answers.add(gw.client.sendAsync(HttpMethod.POST, "/v1/chat/completions", Buffer.buffer(body),
            "content-type", "application/json"));
      }
      for (Future<Response> a : answers) {
        assertThat(a.await(30, TimeUnit.SECONDS).status()).isEqualTo(200);
      }

      Set<String> received = new HashSet<>();
      for (RequestRecord r : gw.posts(0)) {
        received.add(new String(r.body(), StandardCharsets.UTF_8));
      }
      assertThat(received).containsExactlyInAnyOrderElementsOf(bodies);
    }
  }
}
