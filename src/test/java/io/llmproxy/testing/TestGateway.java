package io.llmproxy.testing;

import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.server.Gateway;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.PoolOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;

/**
 * A gateway on a free port in front of in-process simulated backends, for integration tests. The
 * config is YAML in which {@code ${SIM0}}, {@code ${SIM1}}, ... are the simulators' URLs; a
 * {@code listen} on 127.0.0.1 port 0 is added. The simulators and the test client share one Vert.x;
 * the gateway has its own, as in production.
 */
public final class TestGateway implements AutoCloseable {
  public final Vertx vertx;
  public final List<Simulator> sims;
  public final Gateway gateway;
  public final HttpClientAgent http;
  public final TestClient client;

  private TestGateway(Vertx vertx, List<Simulator> sims, Gateway gateway) {
    this.vertx = vertx;
    this.sims = sims;
    this.gateway = gateway;
    this.http = vertx.createHttpClient(new HttpClientOptions().setDefaultHost("127.0.0.1")
        .setDefaultPort(gateway.port()).setKeepAlive(true), new PoolOptions().setHttp1MaxSize(256));
    this.client = new TestClient(http, vertx.getOrCreateContext());
  }

  public static TestGateway start(String yaml, SimulatorOptions... backends) {
    return start(yaml, Map.of(), backends);
  }

  public static TestGateway start(String yaml, Map<String, String> vars, SimulatorOptions... backends) {
    Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(2));
    List<Simulator> sims = new ArrayList<>();
    try {
      Map<String, String> env = new HashMap<>(vars);
      for (int i = 0; i < backends.length; i++) {
        Simulator s = await(Simulator.start(vertx, backends[i]));
        sims.add(s);
        env.put("SIM" + i, s.url());
      }
      GatewayConfig config = ConfigLoader.parse("listen: \"127.0.0.1:0\"\n" + yaml, env::get);
      Gateway gateway = await(Gateway.start(config));
      return new TestGateway(vertx, sims, gateway);
    } catch (Exception e) {
      vertx.close();
      throw new IllegalStateException("test gateway did not start", e);
    }
  }

  public Simulator sim(int i) {
    return sims.get(i);
  }

  /** The inference requests simulator {@code i} saw: its POSTs, without health checks and model lists. */
  public List<RequestRecord> posts(int i) {
    return sims.get(i).requests().stream().filter(r -> r.method().equals("POST")).toList();
  }

  public int port() {
    return gateway.port();
  }

  public String url() {
    return "http://127.0.0.1:" + gateway.port();
  }

  public static <T> T await(Future<T> f) {
    try {
      return f.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Closes everything, after checking that every backend's in-flight count went back to zero: each
   * upstream attempt gives its slot back exactly once, however it ended.
   */
  @Override
  public void close() {
    try {
      Awaitility.await("in-flight counts back to zero").atMost(Duration.ofSeconds(5))
          .until(() -> gateway.router().backends().stream().allMatch(b -> b.inflight() == 0));
    } finally {
      closeQuietly();
    }
  }

  private void closeQuietly() {
    try {
      await(gateway.close());
    } finally {
      await(vertx.close());
    }
  }
}
