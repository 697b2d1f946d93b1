package io.llmproxy.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpServer;
import java.net.ServerSocket;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The load generator against the simulated backend: what it measures is what the backend was told to do. */
class LoadGeneratorTest {
  private static Vertx vertx;

  @BeforeAll
  static void start() {
    vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(2));
  }

  @AfterAll
  static void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private static <T> T await(Future<T> f) throws Exception {
    return f.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
  }

  private static Simulator sim(SimulatorOptions o) throws Exception {
    return await(Simulator.start(vertx, o));
  }

  private static BenchResult run(BenchSettings s) throws Exception {
    return await(new LoadGenerator(vertx, s, 2).run());
  }

  @Test
  void measuredTtftAndGapsMatchTheBackendsWithinTenPercent() throws Exception {
    Simulator sim = sim(SimulatorOptions.defaults().withTtft(Duration.ofMillis(100)).withItl(Duration.ofMillis(20))
        .withTokens(5));
    Simulator instant = sim(SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(5));
    try {
      // The JIT first: run alone in a fresh JVM, the measured requests came 3-15 ms late while the
      // generator's and the simulator's code was still being compiled (p99 111-120 ms in 5 of 5).
      run(BenchSettings.closedLoop(URI.create(instant.url()), true, 4, Duration.ofMillis(700)));
      BenchResult r = run(BenchSettings.closedLoop(URI.create(sim.url()), true, 4, Duration.ofMillis(1500))
          .withWarmup(Duration.ofMillis(300)));

      assertThat(r.errors()).isZero();
      // each request takes 100 + 4 x 20 = 180 ms: 4 users for 1.5 s start about 33
      assertThat(r.requests()).isBetween(24L, 40L);
      assertThat(BenchResult.ms(r.ttftMicros(), 50)).isCloseTo(100.0, within(10.0));
      // p99 of about 30 is the slowest one, which a pause of the JVM both sides share can delay.
      assertThat(BenchResult.ms(r.ttftMicros(), 99)).isCloseTo(100.0, within(25.0));
      assertThat(BenchResult.ms(r.itlMicros(), 50)).isCloseTo(20.0, within(2.0));
      assertThat(r.itlMicros().getTotalCount()).isEqualTo(4 * r.requests());
      assertThat(BenchResult.ms(r.latencyMicros(), 50)).isCloseTo(180.0, within(18.0));
      assertThat(r.outputTokens()).isEqualTo(5 * r.requests());
    } finally {
      await(sim.close());
      await(instant.close());
    }
  }

  @Test
  void anOpenLoopSendsAtItsRateWhateverTheBackendTakes() throws Exception {
    // Each response takes 300 ms; at 200/s that is about 60 in flight, on a pool of 100 connections.
    Simulator sim = sim(SimulatorOptions.defaults().withTtft(Duration.ofMillis(300)).withItl(Duration.ZERO)
        .withTokens(1));
    try {
      BenchSettings base = BenchSettings.closedLoop(URI.create(sim.url()), false, 100, Duration.ofSeconds(1));
      BenchResult even = run(base.withRate(200, false, 1000));
      assertThat(even.errors()).isZero();
      assertThat(even.requests()).isBetween(190L, 210L);
      // a closed loop of 100 users would have sent about 333 (100 / 0.3 s)
      assertThat(BenchResult.ms(even.latencyMicros(), 50)).isBetween(295.0, 600.0);
      assertThat(even.sendLagMicros().getTotalCount()).isEqualTo(even.requests());
      assertThat(even.json()).contains("\"rate\":200.0", "\"arrivals\":\"even\"", "send_lag_ms");

      BenchResult poisson = run(base.withRate(200, true, 1000));
      assertThat(poisson.requests()).isBetween(140L, 260L);
      assertThat(poisson.json()).contains("\"arrivals\":\"poisson\"");
    } finally {
      await(sim.close());
    }
  }

  @Test
  void anOpenLoopSendsEachRequestAtItsOwnTimeNotInBursts() throws Exception {
    // When each request reaches a server that answers at once. At 4,000/s from one loop they are
    // 250 us apart; a millisecond timer sent them 4 at a time (the median gap was 23 us).
    List<Long> arrivals = Collections.synchronizedList(new ArrayList<>());
    HttpServer server = await(vertx.createHttpServer().requestHandler(req -> {
      arrivals.add(System.nanoTime());
      req.response().putHeader("content-type", "application/json").end("{}");
    }).listen(0, "127.0.0.1"));
    try {
      BenchSettings s = BenchSettings.closedLoop(URI.create("http://127.0.0.1:" + server.actualPort()), false, 32,
          Duration.ofSeconds(1)).withRate(4000, false, 1000);
      // The JIT first: in a fresh JVM, the first thousands of requests fell behind and left together.
      await(new LoadGenerator(vertx, s.withRampUp(Duration.ofSeconds(1)), 1).run());
      arrivals.clear();
      BenchResult r = await(new LoadGenerator(vertx, s, 1).run());
      assertThat(r.errors()).as(r.json()).isZero();
      long[] gaps;
      synchronized (arrivals) {
        gaps = new long[arrivals.size() - 1];
        for (int i = 1; i < arrivals.size(); i++) {
          gaps[i - 1] = arrivals.get(i) - arrivals.get(i - 1);
        }
      }
      Arrays.sort(gaps);
      assertThat(gaps.length).isGreaterThan(3000);
      assertThat(TimeUnit.NANOSECONDS.toMicros(gaps[gaps.length / 2])).as("median gap, us").isBetween(100L, 400L);
    } finally {
      await(server.close());
    }
  }

  @Test
  void anOpenLoopRampsItsRateUp() throws Exception {
    Simulator sim = sim(SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1));
    try {
      BenchSettings s = BenchSettings.closedLoop(URI.create(sim.url()), false, 20, Duration.ofSeconds(1))
          .withRate(400, false, 1000).withRampUp(Duration.ofSeconds(1));
      BenchResult r = run(s);
      // the rate rises evenly from 5% to 400/s over the whole second: about half of 400 are sent
      assertThat(r.errors()).isZero();
      assertThat(r.requests()).isBetween(180L, 225L);
    } finally {
      await(sim.close());
    }
  }

  @Test
  void requestsDueBeyondTheInFlightCapAreOverloadErrors() throws Exception {
    Simulator sim = sim(SimulatorOptions.defaults().withTtft(Duration.ofMillis(2000)).withTokens(1));
    try {
      BenchResult r = run(BenchSettings.closedLoop(URI.create(sim.url()), false, 4, Duration.ofMillis(500))
          .withRate(100, false, 2));
      // 50 due, 2 in flight at most, none of those done within the run's 0.5 s
      assertThat(r.errorsByKind().get("overload")).isEqualTo(48L);
      assertThat(r.requests()).isEqualTo(2);
    } finally {
      await(sim.close());
    }
  }

  @Test
  void errorsAreCountedByKind() throws Exception {
    Simulator failing = sim(SimulatorOptions.defaults().withTtft(Duration.ZERO).withFail(1.0, 503));
    int closedPort;
    try (ServerSocket s = new ServerSocket(0)) {
      closedPort = s.getLocalPort();
    }
    try {
      BenchResult r = run(BenchSettings.closedLoop(URI.create(failing.url()), false, 2, Duration.ofMillis(300)));
      assertThat(r.requests()).isZero();
      assertThat(r.errorsByKind()).containsOnlyKeys("http_503");
      assertThat(r.errors()).isPositive();

      BenchResult refused = run(BenchSettings.closedLoop(URI.create("http://127.0.0.1:" + closedPort), false, 1,
          Duration.ofMillis(200)));
      assertThat(refused.errorsByKind()).containsOnlyKeys("connect");
    } finally {
      await(failing.close());
    }
  }

  @Test
  void idleConnectionsAreHeldAndServeAgain() throws Exception {
    Simulator sim = sim(SimulatorOptions.defaults().withTtft(Duration.ZERO).withItl(Duration.ZERO).withTokens(1));
    try {
      IdleConnections idle = new IdleConnections(vertx,
          BenchSettings.closedLoop(URI.create(sim.url()), false, 1, Duration.ofSeconds(1)), 50, Duration.ofMillis(300));
      IdleConnections.Result r = await(idle.run());
      assertThat(r.held()).as(r.json()).isTrue();
      assertThat(r.opened()).isEqualTo(50);
      assertThat(sim.stats().connectionsOpened()).as("one connection each, used twice").isEqualTo(50);
      assertThat(sim.stats().served()).isEqualTo(100);
    } finally {
      await(sim.close());
    }
  }
}
