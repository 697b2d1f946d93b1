package io.llmproxy.testing;

import io.netty.channel.Channel;
import io.netty.channel.ChannelException;
import io.netty.channel.ChannelFactory;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.ServerChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.InternetProtocolFamily;
import io.vertx.core.transport.Transport;
import java.net.SocketException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Java NIO, except that client sockets cannot be created while {@link #refuse} says so, as when
 * the process has no file descriptor left: creating one throws what Netty's NIO socket throws when
 * socket(2) fails with EMFILE. Listening sockets, and the connections they accept, are not affected.
 */
public final class NoSocketsTransport implements Transport {
  private final io.vertx.core.spi.transport.Transport nio = Transport.NIO.implementation();
  private final AtomicInteger refusing = new AtomicInteger();

  /** Refuses the next {@code n} client sockets; -1 refuses all of them until told otherwise, 0 none. */
  public void refuse(int n) {
    refusing.set(n);
  }

  /** Client sockets still to refuse (-1: all). */
  public int refusing() {
    return refusing.get();
  }

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
        ChannelFactory<? extends Channel> sockets = nio.channelFactory(domainSocket);
        return () -> {
          if (refusing.getAndUpdate(n -> n > 0 ? n - 1 : n) != 0) {
            throw new ChannelException("Failed to open a socket.", new SocketException("Too many open files"));
          }
          return sockets.newChannel();
        };
      }

      @Override
      public ChannelFactory<? extends ServerChannel> serverChannelFactory(boolean domainSocket) {
        return nio.serverChannelFactory(domainSocket);
      }
    };
  }
}
