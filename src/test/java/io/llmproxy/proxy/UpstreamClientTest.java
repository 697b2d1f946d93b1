package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.routing.Backend;
import io.netty.channel.Channel;
import io.netty.channel.ChannelException;
import io.netty.channel.ChannelFactory;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.ServerChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.InternetProtocolFamily;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.transport.Transport;
import java.net.SocketException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The upstream pool when the gateway cannot open a socket at all. */
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
    Vertx vertx = Vertx.builder().withTransport(new NoClientSockets()).build();
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

  /** Java NIO, except that no client socket can be created, as when the process has no fd left. */
  private static final class NoClientSockets implements Transport {
    private final io.vertx.core.spi.transport.Transport nio = Transport.NIO.implementation();

    @Override
    public String name() {
      return "nio";
    }

    @Override
    public boolean available() {
      return true;
    }

    @Override
    public Throwable unavailabilityCause() {
      return null;
    }

    @Override
    public io.vertx.core.spi.transport.Transport implementation() {
      return new io.vertx.core.spi.transport.Transport() {
        @Override
        public IoHandlerFactory ioHandlerFactory() {
          return nio.ioHandlerFactory();
        }

        @Override
        public DatagramChannel datagramChannel() {
          return nio.datagramChannel();
        }

        @Override
        @SuppressWarnings("deprecation")
        public DatagramChannel datagramChannel(InternetProtocolFamily family) {
          return nio.datagramChannel(family);
        }

        @Override
        public ChannelFactory<? extends Channel> channelFactory(boolean domainSocket) {
          return () -> {
            // what Netty's NIO socket throws when socket(2) fails with EMFILE
            throw new ChannelException("Failed to open a socket.", new SocketException("Too many open files"));
          };
        }

        @Override
        public ChannelFactory<? extends ServerChannel> serverChannelFactory(boolean domainSocket) {
          return nio.serverChannelFactory(domainSocket);
        }
      };
    }
  }
}
