package io.llmproxy.config;

/**
 * {@code transport}: how the gateway's sockets do their I/O (clients and backends alike).
 * Written with underscores or dashes, in any case.
 */
public enum IoTransport {
  /**
   * io_uring where the kernel offers it, else epoll on Linux (kqueue on macOS) when its native
   * library loads, else Java NIO.
   */
  AUTO,
  /** Linux epoll; the gateway does not start without it. */
  EPOLL,
  /**
   * Linux io_uring (kernel 5.14 or newer, as Netty requires, and not blocked by a seccomp profile,
   * as Docker's default blocks it): the least CPU per request; the gateway does not start without it.
   */
  IO_URING,
  /** Java NIO, everywhere. */
  NIO
}
