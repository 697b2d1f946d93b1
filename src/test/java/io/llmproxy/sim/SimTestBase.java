package io.llmproxy.sim;

import io.vertx.core.Vertx;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;

/** One Vert.x per test class; each test starts its simulators and a client with {@link #start}. */
abstract class SimTestBase {

  static Vertx vertx;

  Simulator sim;
  TestHttp http;

  @BeforeAll
  static void startVertx() {
    vertx = Vertx.vertx();
  }

  @AfterAll
  static void stopVertx() throws Exception {
    vertx.close().await(10, TimeUnit.SECONDS);
  }

  /** Fast defaults for tests: ttft 10ms, itl 5ms, 4 tokens. */
  static SimulatorOptions fast() {
    return SimulatorOptions.defaults()
        .withTtft(Duration.ofMillis(10))
        .withItl(Duration.ofMillis(5))
        .withTokens(4);
  }

  Simulator start(SimulatorOptions options) {
    try {
      sim = Simulator.start(vertx, options).await(10, TimeUnit.SECONDS);
    } catch (java.util.concurrent.TimeoutException e) {
      throw new AssertionError(e);
    }
    http = new TestHttp(vertx);
    return sim;
  }

  @AfterEach
  void stopSimulator() throws Exception {
    if (http != null) {
      http.close();
    }
    if (sim != null) {
      sim.close().await(10, TimeUnit.SECONDS);
    }
  }

  String url(String path) {
    return sim.url() + path;
  }

  /** The one record of {@code path}. */
  RequestRecord only(String path) {
    List<RequestRecord> records =
        sim.requests().stream().filter(r -> r.path().equals(path)).toList();
    if (records.size() != 1) {
      throw new AssertionError("expected one request to " + path + ", got " + records);
    }
    return records.get(0);
  }
}
