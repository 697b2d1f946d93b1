package io.llmproxy.sim;

import java.util.List;
import java.util.Map;

/**
 * What the simulator saw of one request, and what it did with it, at the moment of the snapshot.
 * Requests still in progress show their progress so far.
 *
 * @param id the request's number, from 1, in arrival order; it also forms the response ids
 *     ({@code chatcmpl-<id>}, {@code cmpl-<id>})
 * @param method the HTTP method
 * @param path the path, without the query
 * @param model the body's {@code model}, null if none (or the body was not JSON)
 * @param stream true for a body with {@code "stream": true}, and for TGI's {@code /generate_stream}
 * @param headers the request headers, names in lower case, values as received
 * @param body the body as received; empty until it has been read in full
 * @param connectionId the connection's number, assigned at accept time; equal for requests that
 *     came over one kept-alive connection
 * @param receivedAtNanos {@link System#nanoTime()} when the request's head arrived
 * @param status the response status once decided (sent, or about to be), 0 before and for hangs
 * @param chunksSent SSE data events written, counting the role chunk, the usage chunk and
 *     {@code [DONE]}
 * @param completed the response was ended
 * @param clientDisconnected the connection closed before the response ended
 * @param disconnectedAtNanos {@link System#nanoTime()} of that close, 0 if none
 * @param chunkSentAtNanos {@link System#nanoTime()} of each SSE event write (streaming only)
 */
public record RequestRecord(
    long id,
    String method,
    String path,
    String model,
    boolean stream,
    Map<String, List<String>> headers,
    byte[] body,
    long connectionId,
    long receivedAtNanos,
    int status,
    int chunksSent,
    boolean completed,
    boolean clientDisconnected,
    long disconnectedAtNanos,
    long[] chunkSentAtNanos) {

  /** The body as UTF-8 text. */
  public String bodyText() {
    return new String(body, java.nio.charset.StandardCharsets.UTF_8);
  }

  /** The first value of a header (name in any case), or null. */
  public String header(String name) {
    List<String> values = headers.get(name.toLowerCase(java.util.Locale.ROOT));
    return values == null || values.isEmpty() ? null : values.get(0);
  }

  @Override
  public String toString() {
    return "RequestRecord[id=" + id + ", " + method + " " + path + ", model=" + model
        + ", stream=" + stream + ", connectionId=" + connectionId + ", status=" + status
        + ", chunksSent=" + chunksSent + ", completed=" + completed
        + ", clientDisconnected=" + clientDisconnected + "]";
  }
}
