package io.llmproxy.testing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * One HTTP/1.1 client connection over a plain socket, for tests that need exact bytes on the wire:
 * requests are written as given, responses read as they come, and an answer the connection ends
 * inside of is reported as incomplete rather than failed.
 */
public class RawClient implements AutoCloseable {
  /** A response read off the socket; {@code complete} is false when the connection ended inside it. */
  public record Raw(String statusLine, int status, Map<String, String> headers, byte[] body, boolean complete) {
    public String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    public String text() {
      return new String(body, StandardCharsets.UTF_8);
    }
  }

  public final Socket socket = new Socket();
  private final InputStream in;
  private final OutputStream out;

  /** Connects to 127.0.0.1:{@code port}; a read that waits longer than {@code readTimeoutMs} fails the test. */
  public RawClient(int port, int readTimeoutMs) throws IOException {
    socket.connect(new InetSocketAddress("127.0.0.1", port), 2_000);
    socket.setSoTimeout(readTimeoutMs);
    in = new BufferedInputStream(socket.getInputStream());
    out = socket.getOutputStream();
  }

  public void send(byte[] bytes) throws IOException {
    out.write(bytes);
    out.flush();
  }

  public Raw read() throws IOException {
    return readBody(readHead());
  }

  /** A response, or null when the connection ended (closed or reset) without one. */
  public Raw readOrNull() throws IOException {
    in.mark(1);
    int first;
    try {
      first = in.read();
    } catch (SocketTimeoutException e) {
      throw new AssertionError("neither an answer nor a close within the timeout", e);
    } catch (IOException e) {
      return null;
    }
    if (first < 0) {
      return null;
    }
    in.reset();
    return read();
  }

  /** The status line and headers only: the whole answer to a HEAD, or the start of one read on by hand. */
  public Raw readHead() throws IOException {
    String statusLine = readLine(in);
    assertThat(statusLine).as("status line").isNotNull().startsWith("HTTP/");
    int status = Integer.parseInt(statusLine.substring(9, 12));
    Map<String, String> headers = new LinkedHashMap<>();
    String line;
    while ((line = readLine(in)) != null && !line.isEmpty()) {
      int colon = line.indexOf(':');
      headers.putIfAbsent(line.substring(0, colon).trim().toLowerCase(Locale.ROOT), line.substring(colon + 1).trim());
    }
    return new Raw(statusLine, status, headers, new byte[0], line != null);
  }

  private Raw readBody(Raw head) throws IOException {
    if (head.status() / 100 == 1 || head.status() == 204 || head.status() == 304) {
      return head;
    }
    if ("chunked".equalsIgnoreCase(head.header("transfer-encoding"))) {
      Raw rest = readChunkedRest();
      return new Raw(head.statusLine(), head.status(), head.headers(), rest.body(), rest.complete());
    }
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    boolean complete;
    if (head.header("content-length") != null) {
      complete = copy(body, Integer.parseInt(head.header("content-length")));
    } else {
      complete = false;
      copy(body, Integer.MAX_VALUE);
    }
    return new Raw(head.statusLine(), head.status(), head.headers(), body.toByteArray(), complete);
  }

  /** One chunk's data. */
  public String readChunk() throws IOException {
    int size = Integer.parseInt(readLine(in).split(";")[0].trim(), 16);
    String data = new String(in.readNBytes(size), StandardCharsets.UTF_8);
    readLine(in);
    return data;
  }

  /** The chunks up to the last one, or to the connection's end (then not complete). */
  public Raw readChunkedRest() throws IOException {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    try {
      while (true) {
        String sizeLine = readLine(in);
        if (sizeLine == null) {
          return new Raw("", 0, Map.of(), body.toByteArray(), false);
        }
        int size = Integer.parseInt(sizeLine.split(";")[0].trim(), 16);
        if (size == 0) {
          String trailer;
          while ((trailer = readLine(in)) != null && !trailer.isEmpty()) {
            // trailers
          }
          return new Raw("", 0, Map.of(), body.toByteArray(), trailer != null);
        }
        byte[] data = in.readNBytes(size);
        body.writeBytes(data);
        if (data.length < size || readLine(in) == null) {
          return new Raw("", 0, Map.of(), body.toByteArray(), false);
        }
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the stream neither ended nor was cut within the timeout", e);
    } catch (IOException e) {
      return new Raw("", 0, Map.of(), body.toByteArray(), false); // reset
    }
  }

  /** Copies up to {@code max} bytes; true when all came before the connection ended. */
  private boolean copy(ByteArrayOutputStream to, int max) throws IOException {
    byte[] buf = new byte[8192];
    int left = max;
    try {
      while (left > 0) {
        int n = in.read(buf, 0, Math.min(buf.length, left));
        if (n < 0) {
          return false;
        }
        to.write(buf, 0, n);
        left -= n;
      }
      return true;
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the body neither ended nor was cut within the timeout", e);
    } catch (IOException e) {
      return false; // reset
    }
  }

  /** True when the peer ends the connection (EOF or reset) with nothing more sent, within the timeout. */
  public boolean closedByPeer() throws IOException {
    try {
      return in.read() < 0;
    } catch (SocketTimeoutException e) {
      return false;
    } catch (IOException e) {
      return true;
    }
  }

  @Override
  public void close() throws IOException {
    socket.close();
  }

  /** A line without its CRLF (or LF), ISO-8859-1; null at the end of the stream. */
  public static String readLine(InputStream in) throws IOException {
    StringBuilder sb = new StringBuilder();
    int c;
    while ((c = in.read()) != '\n') {
      if (c < 0) {
        return sb.isEmpty() ? null : sb.toString();
      }
      if (c != '\r') {
        sb.append((char) c);
      }
    }
    return sb.toString();
  }
}
