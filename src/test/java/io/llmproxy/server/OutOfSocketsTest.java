package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.health.PassiveHealth;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.NoSocketsTransport;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The gateway out of file descriptors (bench/run.sh's (d) once ran it out): each client still gets
 * an answer, 502 in OpenAI's shape naming the shortage, and the backend, never asked, is not
 * ejected for it.
 */
class OutOfSocketsTest {
  private static final String COMPLETION = "{\"model\":\"m\",\"prompt\":\"x\"}";

  @Test
  void withNoSocketLeftClientsGet502AndTheBackendIsNotBlamed() {
    NoSocketsTransport transport = new NoSocketsTransport();
    try (TestGateway gw = TestGateway.builder("""
        backends: [{url: "${SIM0}", name: gpu}]
        health_check: {enabled: false}
        """).transport(transport).start(
            SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1))) {
      transport.refuse(-1);
      // more than outlier detection's 3 consecutive failures that would eject a backend
      for (int i = 0; i < 5; i++) {
        Response r = gw.client.post("/v1/completions", COMPLETION);
        assertThat(r.status()).isEqualTo(502);
        assertThat(r.body().toString()).contains("\"code\":\"upstream_error\"")
            .contains("could not open a connection to backend gpu (it is out of sockets)");
      }
      assertThat(gw.gateway.router().backends().get(0).passive().state()).isEqualTo(PassiveHealth.State.HEALTHY);
      transport.refuse(0);
      assertThat(gw.client.post("/v1/completions", COMPLETION).status()).isEqualTo(200);
    }
  }
}
