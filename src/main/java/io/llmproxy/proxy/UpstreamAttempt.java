package io.llmproxy.proxy;

import io.llmproxy.health.PassiveHealth;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.metrics.GatewayMetrics.AttemptOutcome;
import io.llmproxy.metrics.GatewayMetrics.CancelReason;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Backoff;
import io.llmproxy.stats.LatencyStats;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpResponse;
import io.vertx.core.Context;
import io.vertx.core.buffer.Buffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One upstream request of a {@link Dispatch}: the proxy-to-server and server-to-proxy legs. It sends
 * the request, scans the response as it streams, runs the first-token and idle timers, and reports
 * every event to its dispatch, which decides. Everything runs on the exchange's event loop, the
 * upstream connection's too.
 *
 * <p>An attempt ends exactly once (ended, failed or cancelled); at that moment it gives back the
 * backend's in-flight slot and is counted in {@code llmproxy_upstream_attempts_total}. Cancelling an
 * attempt whose request is on the wire closes its connection, so the backend sees the disconnect and
 * the connection never returns to the pool.
 */
final class UpstreamAttempt implements UpstreamConnection.Listener {

  /** Why an attempt failed on its own (a bad status is decided by the dispatch instead). */
  enum Failure {
    /** No connection: refused, unreachable, the connect timeout, or no socket left to open one. */
    CONNECT,
    /** The connection broke, before or during the response. */
    RESET,
    /** No first token within {@code timeouts.first_token}. */
    FIRST_TOKEN_TIMEOUT,
    /** No bytes for {@code timeouts.idle} once the response had started. */
    IDLE_TIMEOUT
  }

  private enum State { ACQUIRING, SENT, RECEIVING, ENDED, FAILED, CANCELLED }

  private final Dispatch dispatch;
  private final Context context;
  private final Timeouts timeouts;
  private final GatewayMetrics metrics;
  private final Backend backend;
  /** A half-open canary: its outcome decides whether the backend comes back. */
  private final boolean canary;
  private final boolean stream;
  private final boolean firstByteIsToken;
  private final long firstTokenTimeoutMs;
  private final long idleTimeoutNanos;

  private State state = State.ACQUIRING;
  private UpstreamClient.Lease lease;
  private HttpResponse response;
  private BodyScanner scanner;
  private boolean committed;
  /** The backend's health has heard how this attempt went (once its answer's head came, or it failed). */
  private boolean healthReported;
  private CancelReason cancelReason;
  private Throwable cause;
  private Timeouts.Timer timer;
  /** {@code timeouts.idle}, once the response (streaming: its first token) has started; null before and after. */
  private Timeouts.Quiet idle;
  /** The client is slow: chunks are not read ({@link #pause}), so silence is not the backend's. */
  private boolean paused;
  /** Hedged: the bytes received before the commit, held until this attempt wins or is cancelled. */
  private List<Buffer> held;
  private long heldBytes;

  final long startNanos;
  /** Started as a hedge (after the threshold), not as the first attempt, a race entry or a retry. */
  boolean hedge;
  long sentNanos;
  long headNanos;
  long firstByteNanos;
  long firstTokenNanos;
  private long lastByteNanos;

  UpstreamAttempt(Dispatch dispatch, Context context, Timeouts timeouts, GatewayMetrics metrics, Backend backend,
      boolean canary, boolean stream, boolean firstByteIsToken, long firstTokenTimeoutMs, long idleTimeoutMs) {
    this.dispatch = dispatch;
    this.context = context;
    this.timeouts = timeouts;
    this.metrics = metrics;
    this.backend = backend;
    this.canary = canary;
    this.stream = stream;
    this.firstByteIsToken = firstByteIsToken;
    this.firstTokenTimeoutMs = firstTokenTimeoutMs;
    this.idleTimeoutNanos = TimeUnit.MILLISECONDS.toNanos(idleTimeoutMs);
    this.startNanos = System.nanoTime();
  }

  Backend backend() {
    return backend;
  }

  /** The backend's status line and headers, once they came; null before. */
  HttpResponse response() {
    return response;
  }

  int status() {
    return response.status().code();
  }

  BodyScanner scanner() {
    return scanner;
  }

  Throwable cause() {
    return cause;
  }

  boolean isDone() {
    return state == State.ENDED || state == State.FAILED || state == State.CANCELLED;
  }

  void markCommitted() {
    committed = true;
  }

  /**
   * Holds a copy of a chunk until the commit (hedged mode): the chunk's own memory goes back to the
   * connection's pool when it has been handed on, and a loser's copies need no giving back.
   */
  void hold(Buffer chunk) {
    if (held == null) {
      held = new ArrayList<>(4);
    }
    held.add(Buffer.buffer(chunk.length()).appendBuffer(chunk)); // on the heap (Buffer.copy() would pool it)
    heldBytes += chunk.length();
  }

  long heldBytes() {
    return heldBytes;
  }

  /** The held chunks, in order; the attempt holds nothing after. */
  List<Buffer> takeHeld() {
    List<Buffer> h = held == null ? List.of() : held;
    held = null;
    heldBytes = 0;
    return h;
  }

  /** The request went out on the wire (so cancelling it cost the backend something). */
  boolean wasSent() {
    return sentNanos != 0;
  }

  /** Cancelled because another attempt won. */
  boolean cancelledAsLoser() {
    return state == State.CANCELLED && cancelReason == CancelReason.HEDGE_LOSER;
  }

  void start(UpstreamClient client, long connectTimeoutMs) {
    client.lease(backend, connectTimeoutMs).onComplete(ar -> {
      if (ar.failed()) {
        if (state != State.CANCELLED) {
          fail(Failure.CONNECT, ar.cause());
        }
        return;
      }
      lease = ar.result();
      if (state == State.CANCELLED) {
        lease.release(true); // nothing was written: the connection is as good as before
        return;
      }
      send();
    });
  }

  private void send() {
    state = State.SENT;
    sentNanos = System.nanoTime();
    if (stream && firstTokenTimeoutMs > 0) {
      timer = timeouts.schedule(context, firstTokenTimeoutMs, () -> {
        timer = null;
        if (isDone() || (scanner != null && scanner.firstTokenSeen())) {
          return;
        }
        if (committed && lastByteNanos != 0) {
          watchSilenceFrom(lastByteNanos);
        } else {
          fail(Failure.FIRST_TOKEN_TIMEOUT, null);
        }
      });
    }
    // A kept-alive connection the backend has just closed fails the write or says nothing more:
    // both arrive as onError, a reset that is retried.
    lease.connection().send(dispatch.requestHead(backend), dispatch.requestBody(), this);
  }

  @Override
  public void onHead(HttpResponse r) {
    if (isDone()) {
      return;
    }
    response = r;
    state = State.RECEIVING;
    headNanos = System.nanoTime();
    reportHead(r);
    if (r.status().code() / 100 == 2) {
      metrics.modelServed(dispatch.modelLabel());
    }
    String type = r.headers().get(HttpHeaderNames.CONTENT_TYPE);
    scanner = BodyScanner.isEventStream(type) ? BodyScanner.sse(firstByteIsToken) : BodyScanner.plain();
    if (!stream) {
      startIdleTimer();
    }
    dispatch.onHead(this);
  }

  @Override
  public void onContent(Buffer chunk) {
    if (isDone()) {
      return;
    }
    long now = System.nanoTime();
    lastByteNanos = now;
    if (idle != null) {
      idle.touch(now);
    }
    if (firstByteNanos == 0) {
      firstByteNanos = now;
    }
    boolean first = scanner.feed(chunk);
    if (first) {
      reportAnswered();
      firstTokenNanos = now;
      metrics.backendTtft(backend.name(), dispatch.modelLabel(), now - sentNanos);
      if (stream) {
        recordLatency(LatencyStats.Kind.TTFT, now - sentNanos);
        cancelTimer();
        startIdleTimer();
      }
    }
    dispatch.onChunk(this, chunk, first);
  }

  /**
   * Counts a latency in the backend's statistics, unless a config reload removed the backend (or
   * changed its URL) while this attempt ran: its statistics and hedge-threshold gauges went with it,
   * and a late sample would bring them back.
   */
  private void recordLatency(LatencyStats.Kind kind, long nanos) {
    if (!backend.state().retired()) {
      stats().record(backend.name(), dispatch.statsModel(), kind, nanos);
    }
  }

  @Override
  public void onEnd(boolean reusable) {
    if (isDone()) {
      return;
    }
    reportAnswered(); // an answer with no token in it (an empty body) counts at its end
    if (!stream && status() / 100 == 2) {
      recordLatency(LatencyStats.Kind.LATENCY, System.nanoTime() - sentNanos);
    }
    // An answer that completes undecided (not streaming, hedged; or no body byte before its end)
    // wins here: committed before it counts how it ended, so it counts as won, not lost.
    dispatch.onComplete(this);
    if (isDone()) {
      return;
    }
    end(State.ENDED);
    // A complete exchange: the connection may serve another, unless the backend said it closes.
    lease.release(reusable);
    dispatch.onEnd(this);
  }

  @Override
  public void onError(Throwable cause) {
    if (!isDone()) {
      fail(Failure.RESET, cause);
    }
  }

  /**
   * No token the gateway recognises came within the first-token timeout, but the attempt's bytes
   * already reach the client, so nothing can take its place: a stream whose events are of a kind the
   * gateway does not read (another API's, passed through) is not cut while it flows. Its silence is
   * the idle timeout's to judge, counted from its last byte.
   */
  private void watchSilenceFrom(long lastNanos) {
    if (idleTimeoutNanos > 0 && System.nanoTime() - lastNanos >= idleTimeoutNanos) {
      fail(Failure.IDLE_TIMEOUT, null);
      return;
    }
    startIdleTimer();
    if (idle != null) {
      idle.touch(lastNanos);
    }
  }

  private void startIdleTimer() {
    if (idleTimeoutNanos <= 0 || idle != null) {
      return;
    }
    idle = timeouts.quiet(context, idleTimeoutNanos, () -> {
      if (!isDone()) {
        fail(Failure.IDLE_TIMEOUT, null);
      }
    });
    if (paused) {
      idle.suspend();
    }
  }

  /**
   * Stops delivering chunks (the client is slow); TCP backpressure reaches the backend. The idle
   * timeout stops counting meanwhile: a client that reads slowly is no sign of a backend gone quiet,
   * and must not fail the stream or count against the backend's health.
   */
  void pause() {
    if (response != null && !isDone()) {
      lease.connection().pause();
      paused = true;
      if (idle != null) {
        idle.suspend();
      }
    }
  }

  void resume() {
    if (response != null && !isDone()) {
      paused = false;
      if (idle != null) {
        idle.resume(System.nanoTime());
      }
      lease.connection().resume(); // what it held may fill the client's queue and pause it again
    }
  }

  /** Fails the attempt on the gateway's decision (a retryable status): the response is dropped. */
  void discard() {
    if (isDone()) {
      return;
    }
    end(State.FAILED);
    reset();
  }

  /** Aborts the upstream request, named with why. */
  void cancel(CancelReason reason) {
    if (isDone()) {
      return;
    }
    cancelReason = reason;
    end(State.CANCELLED);
    if (wasSent()) {
      metrics.cancelledUpstream(reason);
    }
    if (!healthReported) {
      healthReported = true;
      if (reason == CancelReason.TIMEOUT && wasSent()) {
        // the total timeout, and the backend had not answered (no first token): its timeout, which
        // counts (a non-streaming request has no first-token timeout of its own)
        backend.failed(PassiveHealth.Failure.TIMEOUT, 0, canary);
      } else {
        backend.abandoned(canary); // no outcome: a canary's slot is given back
      }
    }
    if (reason == CancelReason.HEDGE_LOSER && wasSent() && (!stream || firstTokenNanos == 0)) {
      // A loser's time so far is a lower bound of its latency: counted, so a slow backend's
      // percentile does not forget it was slow just because it keeps losing.
      recordLatency(stream ? LatencyStats.Kind.TTFT : LatencyStats.Kind.LATENCY, System.nanoTime() - sentNanos);
    }
    held = null;
    reset();
  }

  private void fail(Failure failure, Throwable t) {
    cause = t;
    end(State.FAILED);
    reset();
    if (t instanceof UpstreamClient.NoSocketException || t instanceof UpstreamClient.PoolLimitException) {
      backend.abandoned(canary && !healthReported); // the gateway's own shortage, not the backend's
    } else {
      backend.failed(switch (failure) {
        case CONNECT -> PassiveHealth.Failure.CONNECT;
        case RESET -> PassiveHealth.Failure.RESET;
        case FIRST_TOKEN_TIMEOUT, IDLE_TIMEOUT -> PassiveHealth.Failure.TIMEOUT;
      }, 0, canary && !healthReported);
    }
    healthReported = true;
    dispatch.onFailure(this, failure);
  }

  /**
   * Tells the backend's health what its answer's head says when it is a failure: a 5xx or a 429 (a
   * 429's retry-after with it). Any other head is not an answer yet ({@link #reportAnswered}): a
   * backend that sends its head at once and then nothing, as a wedged engine does, must count the
   * timeouts that follow, not a success first.
   */
  private void reportHead(HttpResponse r) {
    int status = r.status().code();
    if (status == 429) {
      healthReported = true;
      backend.failed(PassiveHealth.Failure.STATUS_429,
          Math.max(0, Backoff.parseRetryAfterNanos(r.headers().get(HttpHeaderNames.RETRY_AFTER))), canary);
    } else if (status >= 500) {
      healthReported = true;
      backend.failed(PassiveHealth.Failure.STATUS_5XX, 0, canary);
    }
  }

  /** The backend answered: its first token (a body's first byte), or the end of a response without one. */
  private void reportAnswered() {
    if (!healthReported) {
      healthReported = true;
      backend.succeeded(canary);
    }
  }

  /**
   * Closes the connection (on HTTP/1.1 the only way to abort a request): the backend sees the
   * disconnect. The attempt is already in its terminal state, so a callback still on its way sees
   * {@link #isDone()} and returns.
   */
  private void reset() {
    if (lease != null) {
      lease.release(false);
    }
  }

  private void end(State terminal) {
    state = terminal;
    cancelTimer();
    backend.release();
    metrics.attempt(backend.name(), outcome());
  }

  /** Won only by a committed attempt that ran to its end; a winner cut off later counts as cancelled or failed. */
  private AttemptOutcome outcome() {
    return switch (state) {
      case CANCELLED -> cancelReason == CancelReason.HEDGE_LOSER ? AttemptOutcome.LOST : AttemptOutcome.CANCELLED;
      case FAILED -> AttemptOutcome.FAILED;
      default -> committed ? AttemptOutcome.WON : AttemptOutcome.LOST;
    };
  }

  private LatencyStats stats() {
    return dispatch.services().stats();
  }

  private void cancelTimer() {
    if (timer != null) {
      timer.cancel();
      timer = null;
    }
    if (idle != null) {
      idle.cancel();
      idle = null;
    }
  }
}
