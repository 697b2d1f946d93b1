package io.llmproxy.api;

import static java.util.Objects.requireNonNull;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringBufferRingConfig;
import io.netty.channel.uring.IoUringChannelOption;
import io.netty.channel.uring.IoUringFixedBufferRingAllocator;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringIoHandlerConfig;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.transport.Transport;
import java.util.concurrent.ThreadFactory;

/**
 * Vert.x's io_uring transport, with a ring of receive buffers registered with the kernel on each
 * event loop (io_uring's provided buffers). A connection that reads from the ring keeps one
 * multishot receive armed for as long as it lives, and the kernel picks the buffer each time data
 * arrives: no new receive submitted after every read, no buffer handed to the kernel in advance per
 * connection. The gateway's client connections and its upstream connections read this way.
 *
 * <p>Built on Vert.x's public transport SPI, by delegation to {@link Transport#IO_URING}: only the
 * event loops' I/O handler (which gets the ring) and the accepted connections' options (which name
 * it) differ. {@link #wrap} falls back to the plain transport where the kernel cannot register a
 * buffer ring.
 */
public final class BufferRingTransport implements Transport {
  /** The ring's buffer group id, the same on every loop (each loop has its own ring). */
  static final short GROUP = 1;
  /** Buffers the ring may grow to on one loop. */
  static final short RING_SIZE = 256;
  /** Buffers added at a time: the ring starts with this many and grows when the kernel runs out. */
  static final int BATCH = 16;
  /**
   * Bytes per buffer. With incremental consumption (Linux 6.12+) a buffer serves one read after
   * another until it is used up, so small reads do not each take 16 KiB.
   */
  static final int BUFFER_BYTES = 16 * 1024;

  private final Transport plain;
  private final Spi spi;

  private BufferRingTransport(Transport plain) {
    this.plain = plain;
    this.spi = new Spi(plain.implementation());
  }

  /**
   * {@code uring} (Vert.x's io_uring transport) with a buffer ring on each loop, or {@code uring}
   * itself where io_uring or its buffer rings are not available.
   */
  public static Transport wrap(Transport uring) {
    requireNonNull(uring, "uring");
    if (!uring.available() || !IoUring.isRegisterBufferRingSupported()) {
      return uring;
    }
    return new BufferRingTransport(uring);
  }

  /**
   * Makes the connections of {@code bootstrap} read from their loop's buffer ring when {@code
   * transport} (a Vert.x instance's) is this one; leaves it as it is otherwise.
   */
  public static void readFromRing(io.vertx.core.spi.transport.Transport transport, Bootstrap bootstrap) {
    if (transport instanceof Spi) {
      bootstrap.option(IoUringChannelOption.IO_URING_BUFFER_GROUP_ID, GROUP);
    }
  }

  @Override
  public String name() {
    return plain.name();
  }

  @Override
  public boolean available() {
    return plain.available();
  }

  @Override
  public Throwable unavailabilityCause() {
    return plain.unavailabilityCause();
  }

  @Override
  public io.vertx.core.spi.transport.Transport implementation() {
    return spi;
  }

  /** The SPI side: Vert.x's io_uring transport but for the two differences above. */
  private static final class Spi extends DelegatingTransport {
    Spi(io.vertx.core.spi.transport.Transport uring) {
      super(uring);
    }

    @Override
    public IoHandlerFactory ioHandlerFactory() {
      IoUringBufferRingConfig ring = IoUringBufferRingConfig.builder()
          .bufferGroupId(GROUP)
          .bufferRingSize(RING_SIZE)
          .batchSize(BATCH)
          .incremental(IoUring.isRegisterBufferRingIncSupported())
          .allocator(new IoUringFixedBufferRingAllocator(BUFFER_BYTES))
          .build();
      return IoUringIoHandler.newFactory(new IoUringIoHandlerConfig().setBufferRingConfig(ring));
    }

    @Override
    public EventLoopGroup eventLoopGroup(int type, int nThreads, ThreadFactory threadFactory, int ioRatio) {
      // The acceptor loop reads nothing: it keeps the plain handler, without a ring.
      return type == ACCEPTOR_EVENT_LOOP_GROUP
          ? delegate.eventLoopGroup(type, nThreads, threadFactory, ioRatio)
          : super.eventLoopGroup(type, nThreads, threadFactory, ioRatio);
    }

    @Override
    public void configure(NetServerOptions options, boolean domainSocket, ServerBootstrap bootstrap) {
      super.configure(options, domainSocket, bootstrap);
      bootstrap.childOption(IoUringChannelOption.IO_URING_BUFFER_GROUP_ID, GROUP);
    }
  }
}
