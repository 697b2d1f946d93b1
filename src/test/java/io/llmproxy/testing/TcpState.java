package io.llmproxy.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The state of a TCP connection on this machine, as Linux lists it in {@code /proc/net/tcp} and
 * {@code /proc/net/tcp6}: the one way to see, without reading from it, whether the other end has
 * closed its socket (a peer that closes moves its side out of {@code ESTABLISHED} at once, into
 * {@code FIN_WAIT1} while its last bytes are still unsent).
 */
public final class TcpState {
  private static final List<String> NAMES = List.of("", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
      "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING");

  private TcpState() {}

  /** Whether this machine lists its connections where {@link #of} reads them. */
  public static boolean available() {
    return Files.isReadable(Path.of("/proc/net/tcp"));
  }

  /**
   * The state of the socket whose local port is {@code localPort} and whose peer's port is
   * {@code remotePort}, or {@code "GONE"} when there is none.
   */
  public static String of(int localPort, int remotePort) {
    String local = String.format(Locale.ROOT, ":%04X", localPort);
    String remote = String.format(Locale.ROOT, ":%04X", remotePort);
    for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
      List<String> lines;
      try {
        lines = Files.readAllLines(Path.of(table));
      } catch (IOException e) {
        if (Files.exists(Path.of(table))) {
          throw new UncheckedIOException(e);
        }
        continue;
      }
      for (String line : lines.subList(Math.min(1, lines.size()), lines.size())) {
        String[] f = line.strip().split("\\s+");
        if (f.length > 3 && f[1].endsWith(local) && f[2].endsWith(remote)) {
          return NAMES.get(Integer.parseInt(f[3], 16));
        }
      }
    }
    return "GONE";
  }
}
