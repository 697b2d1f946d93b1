package io.llmproxy.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import io.vertx.core.Deployable;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpServer;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class PerEventLoopTest {
  private Vertx vertx;

  @BeforeEach
  void start() {
    vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(4));
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().await(10, TimeUnit.SECONDS);
  }

  @Test
  void everyInstanceHasALoopOfItsOwnEvenWhenItsStartTakesLoopsMeanwhile() throws Exception {
    for (int run = 0; run < 20; run++) {
      List<String> threads = new CopyOnWriteArrayList<>();
      PerEventLoop<?> deployed = PerEventLoop.deploy(vertx, 4, () -> context -> {
        threads.add(Thread.currentThread().getName());
        // what made deployVerticle(instances) collide: a start that takes loops of its own (creating an
        // HTTP client there put two of two instances on one loop in 9 of 40 deployments)
        vertx.createHttpClient();
        ((io.vertx.core.internal.VertxInternal) vertx).createEventLoopContext();
        return Future.succeededFuture();
      }).await(10, TimeUnit.SECONDS);
      assertThat(Set.copyOf(threads)).as("run %d: %s", run, threads).hasSize(4);
      deployed.undeploy().await(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void undeployRunsEachInstancesUndeployOnItsOwnLoop() throws Exception {
    List<HttpServer> servers = new CopyOnWriteArrayList<>();
    List<String> deployedOn = new CopyOnWriteArrayList<>();
    List<String> undeployedOn = new CopyOnWriteArrayList<>();
    PerEventLoop<?> deployed = PerEventLoop.deploy(vertx, 2, () -> new Deployable() {
      private HttpServer server;

      @Override
      public Future<?> deploy(io.vertx.core.Context context) {
        deployedOn.add(Thread.currentThread().getName());
        server = context.owner().createHttpServer().requestHandler(req -> req.response().end("ok"));
        servers.add(server);
        return server.listen(-1, "127.0.0.1"); // both share one random port
      }

      @Override
      public Future<?> undeploy(io.vertx.core.Context context) {
        undeployedOn.add(Thread.currentThread().getName());
        return server.close();
      }
    }).await(10, TimeUnit.SECONDS);
    int port = servers.get(0).actualPort();
    assertThat(port).isPositive();
    assertThat(connects(port)).isTrue();

    deployed.undeploy().await(10, TimeUnit.SECONDS);
    await().atMost(Duration.ofSeconds(5)).until(() -> !connects(port));
    assertThat(undeployedOn).containsExactlyInAnyOrderElementsOf(deployedOn);
  }

  @Test
  void aFailedInstanceFailsTheDeploymentAndTheOthersAreUndeployed() {
    List<String> undeployed = new CopyOnWriteArrayList<>();
    int[] made = {0};
    assertThatThrownBy(() -> PerEventLoop.deploy(vertx, 3, () -> {
      int i = made[0]++;
      return new Deployable() {
        @Override
        public Future<?> deploy(io.vertx.core.Context context) {
          return i == 1 ? Future.failedFuture(new IllegalStateException("instance 1 fails")) : Future.succeededFuture();
        }

        @Override
        public Future<?> undeploy(io.vertx.core.Context context) {
          undeployed.add("instance " + i);
          return Future.succeededFuture();
        }
      };
    }).await(10, TimeUnit.SECONDS)).hasMessageContaining("instance 1 fails");
    assertThat(undeployed).containsExactlyInAnyOrder("instance 0", "instance 2");
  }

  private static boolean connects(int port) {
    try (java.net.Socket s = new java.net.Socket()) {
      s.connect(new java.net.InetSocketAddress("127.0.0.1", port), 1000);
      return true;
    } catch (java.io.IOException e) {
      return false;
    }
  }
}
