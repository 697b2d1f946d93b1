package io.llmproxy.sim;

import io.vertx.core.MultiMap;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The live state of one request. Mutated on its connection's event loop; read from any thread
 * through {@link #snapshot()}, hence the locking.
 */
final class SimExchange {

  private static final byte[] NO_BODY = new byte[0];
  private static final long[] NO_CHUNKS = new long[0];

  final long id;
  final String method;
  final String path;
  final long connectionId;
  final long receivedAtNanos;
  private final MultiMap headers;

  private byte[] body = NO_BODY;
  private String model;
  private boolean stream;
  private int status;
  private long[] chunkSentAtNanos = NO_CHUNKS;
  private int chunksSent;
  private boolean completed;
  private boolean clientDisconnected;
  private long disconnectedAtNanos;

  /** What to stop when the client goes away; touched on the event loop only. */
  private Runnable onDisconnect;

  SimExchange(long id, String method, String path, MultiMap headers, long connectionId,
      long receivedAtNanos) {
    this.id = id;
    this.method = method;
    this.path = path;
    this.headers = headers;
    this.connectionId = connectionId;
    this.receivedAtNanos = receivedAtNanos;
  }

  synchronized void body(byte[] body) {
    this.body = body;
  }

  synchronized void request(String model, boolean stream) {
    this.model = model;
    this.stream = stream;
  }

  synchronized void status(int status) {
    this.status = status;
  }

  /** Prepares room for the timestamps of {@code expected} SSE events. */
  synchronized void expectChunks(int expected) {
    chunkSentAtNanos = new long[expected];
  }

  synchronized void chunkSent(long atNanos) {
    if (chunksSent == chunkSentAtNanos.length) {
      chunkSentAtNanos = Arrays.copyOf(chunkSentAtNanos, Math.max(8, chunksSent * 2));
    }
    chunkSentAtNanos[chunksSent++] = atNanos;
  }

  synchronized void completed() {
    completed = true;
  }

  synchronized boolean isFinished() {
    return completed || clientDisconnected;
  }

  void onDisconnect(Runnable action) {
    this.onDisconnect = action;
  }

  /**
   * The connection closed. Returns true the first time, if the response had not ended: the client
   * left early.
   */
  boolean clientClosed(long atNanos) {
    synchronized (this) {
      if (completed || clientDisconnected) {
        return false;
      }
      clientDisconnected = true;
      disconnectedAtNanos = atNanos;
    }
    stopResponse();
    return true;
  }

  /** Stops the response's timers (once), as a disconnect does, without recording one: the simulator stopped. */
  void stopResponse() {
    Runnable action = onDisconnect;
    onDisconnect = null;
    if (action != null) {
      action.run();
    }
  }

  synchronized RequestRecord snapshot() {
    return new RequestRecord(
        id,
        method,
        path,
        model,
        stream,
        headerMap(headers),
        body.clone(),
        connectionId,
        receivedAtNanos,
        status,
        chunksSent,
        completed,
        clientDisconnected,
        disconnectedAtNanos,
        Arrays.copyOf(chunkSentAtNanos, chunksSent));
  }

  /** For {@code /sim/stats}: read under the same lock as the snapshot, without copying arrays. */
  synchronized void describe(Describer d) {
    d.describe(id, path, model, stream, status, chunksSent, completed, clientDisconnected,
        clientDisconnected ? disconnectedAtNanos - receivedAtNanos : 0);
  }

  interface Describer {
    void describe(long id, String path, String model, boolean stream, int status, int chunksSent,
        boolean completed, boolean clientDisconnected, long disconnectedAfterNanos);
  }

  private static Map<String, List<String>> headerMap(MultiMap headers) {
    Map<String, List<String>> map = new LinkedHashMap<>();
    for (Map.Entry<String, String> e : headers) {
      map.computeIfAbsent(e.getKey().toLowerCase(Locale.ROOT), k -> new java.util.ArrayList<>())
          .add(e.getValue());
    }
    map.replaceAll((k, v) -> List.copyOf(v));
    return Collections.unmodifiableMap(map);
  }
}
