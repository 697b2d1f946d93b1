package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.routing.Backend;
import io.llmproxy.testing.NoSocketsTransport;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The upstream pool when the gateway cannot open a socket at all, and when a reload drops a backend. */
class UpstreamClientTest {

  /** What a lease's failure looked like from inside its handler. */
  record Failed(Thread thread, Throwable cause, int open) {}

  /**
   * Out of file descriptors, Netty cannot create the socket, and fails the connect on its global
   * executor instead of the event loop. The pool and the client's response belong to the loop, so
   * the failure must arrive there (it once did not, and the client's 502 was never written), and it
   * names the gateway's shortage rather than blaming the backend.
   */
  @Test
  void aSocketThatCannotBeCreatedFailsTheLeaseOnItsEventLoop() throws Exception {
    Vertx vertx = Vertx.builder().withTransport(refusingAll()).build();
    try {
      Context context = vertx.getOrCreateContext();
      GatewayConfig config = ConfigLoader.parse("backends: [{url: \"http://127.0.0.1:9\", name: gpu}]\n", n -> null);
      Backend backend = new Backend(config.backends().get(0), 0, false);
      CompletableFuture<Thread> loop = new CompletableFuture<>();
      CompletableFuture<Failed> failed = new CompletableFuture<>();
      context.runOnContext(v -> {
        loop.complete(Thread.currentThread());
        UpstreamClient client = new UpstreamClient(context, UpstreamClient.limits(config, 1, UpstreamClient.Trust.JDK));
        client.lease(backend, 1_000).onComplete(ar ->
            failed.complete(new Failed(Thread.currentThread(), ar.cause(), client.open(backend))));
      });
      Failed f = failed.get(10, TimeUnit.SECONDS);
      assertThat(f.thread()).isSameAs(loop.get(10, TimeUnit.SECONDS));
      assertThat(f.cause()).isInstanceOf(UpstreamClient.NoSocketException.class)
          .hasMessage("no socket to gpu could be opened: Too many open files");
      assertThat(f.open()).as("connections counted open after the failure").isZero();
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  /**
   * Out of sockets with connections idle in the pool (to any backend): the longest idle give their
   * sockets back and the connect is tried once more, so the request is served.
   */
  @Test
  void outOfSocketsTheIdleConnectionsAreClosedAndTheConnectTriedAgain() throws Exception {
    NoSocketsTransport transport = new NoSocketsTransport();
    Vertx vertx = Vertx.builder().withTransport(transport).build();
    try {
      int port = okServer(vertx);
      Context context = vertx.getOrCreateContext();
      GatewayConfig config = ConfigLoader.parse("backends:\n"
          + "  - {url: \"http://127.0.0.1:" + port + "\", name: idle}\n"
          + "  - {url: \"http://localhost:" + port + "\", name: busy}\n", n -> null);
      Backend idle = new Backend(config.backends().get(0), 0, false);
      Backend busy = new Backend(config.backends().get(1), 1, false);
      CompletableFuture<Integer> served = new CompletableFuture<>();
      CompletableFuture<Boolean> idleClosed = new CompletableFuture<>();
      context.runOnContext(v -> {
        UpstreamClient client = new UpstreamClient(context, UpstreamClient.limits(config, 1, UpstreamClient.Trust.JDK));
        client.lease(idle, 1_000)
            .compose(lease -> {
              lease.connection().channel().closeFuture().addListener(f -> idleClosed.complete(true));
              lease.release(true); // idle in the pool
              transport.refuse(1); // the next socket cannot be created
              return client.lease(busy, 1_000);
            })
            .onSuccess(lease -> served.complete(client.open(busy)))
            .onFailure(served::completeExceptionally);
      });
      assertThat(served.get(10, TimeUnit.SECONDS)).as("connections open to the backend asked for").isEqualTo(1);
      assertThat(idleClosed.getNow(false)).as("the idle connection to the other backend was closed").isTrue();
      assertThat(transport.refusing()).as("sockets still to refuse").isZero();
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  /**
   * A config reload that drops a backend: its idle connection closes at once, and the one still
   * leased (a request in flight) closes when it is given back instead of staying in the pool, as does
   * one a request routed before the reload leases afterwards (a retry). A new generation of the same
   * backend (same name and URL) keeps its pool.
   */
  @Test
  void theConnectionsOfABackendNoLongerConfiguredClose() throws Exception {
    Vertx vertx = Vertx.vertx();
    try {
      int port = okServer(vertx);
      Context context = vertx.getOrCreateContext();
      GatewayConfig config = ConfigLoader.parse("backends:\n"
          + "  - {url: \"http://127.0.0.1:" + port + "\", name: kept}\n"
          + "  - {url: \"http://127.0.0.1:" + port + "/other\", name: dropped}\n", n -> null);
      Backend kept = new Backend(config.backends().get(0), 0, false);
      Backend keptReloaded = new Backend(config.backends().get(0), 0, kept.state(), false, null);
      Backend dropped = new Backend(config.backends().get(1), 1, false);
      CompletableFuture<io.netty.channel.Channel[]> channels = new CompletableFuture<>();
      CompletableFuture<Integer> keptIdle = new CompletableFuture<>();
      context.runOnContext(v -> {
        UpstreamClient client = new UpstreamClient(context, UpstreamClient.limits(config, 1, UpstreamClient.Trust.JDK));
        client.lease(kept, 1_000).compose(k -> {
          k.release(true);
          return client.lease(dropped, 1_000).compose(idle -> client.lease(dropped, 1_000).compose(busy -> {
            io.netty.channel.Channel[] ch = {k.connection().channel(), idle.connection().channel(),
                busy.connection().channel(), null};
            idle.release(true);
            dropped.state().retire(); // the reload: only "kept" is left
            client.dropRetired();
            busy.release(true); // the request in flight ends after it
            keptIdle.complete(client.idle(keptReloaded));
            // a retry of a request routed before the reload: served, and not kept
            return client.lease(dropped, 1_000).map(late -> {
              ch[3] = late.connection().channel();
              late.release(true);
              return ch;
            });
          }));
        }).onComplete(ar -> {
          if (ar.succeeded()) {
            channels.complete(ar.result());
          } else {
            channels.completeExceptionally(ar.cause());
          }
        });
      });
      io.netty.channel.Channel[] ch = channels.get(10, TimeUnit.SECONDS);
      ch[1].closeFuture().get(10, TimeUnit.SECONDS); // the idle one to the dropped backend
      ch[2].closeFuture().get(10, TimeUnit.SECONDS); // the one given back after the reload
      ch[3].closeFuture().get(10, TimeUnit.SECONDS); // the one leased after the reload
      assertThat(ch[0].isOpen()).as("the kept backend's connection").isTrue();
      assertThat(keptIdle.get(10, TimeUnit.SECONDS)).as("the kept backend's new generation finds its idle connection")
          .isEqualTo(1);
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }
  }

  /** A server on a free port that answers every request with 200 "ok"; its port. */
  private static int okServer(Vertx vertx) throws Exception {
    return vertx.createHttpServer().requestHandler(req -> req.response().end("ok"))
        .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).actualPort();
  }

  private static NoSocketsTransport refusingAll() {
    NoSocketsTransport t = new NoSocketsTransport();
    t.refuse(-1);
    return t;
  }
}
