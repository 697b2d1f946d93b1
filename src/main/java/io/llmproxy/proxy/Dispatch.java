package io.llmproxy.proxy;

import static java.util.Objects.requireNonNull;

import io.llmproxy.api.OpenAiError;
import io.llmproxy.config.RoutingConfig;
import io.llmproxy.config.RoutingConfig.FirstTokenMode;
import io.llmproxy.config.RoutingConfig.RetryConfig;
import io.llmproxy.config.ValueParsers;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.metrics.GatewayMetrics.CancelReason;
import io.llmproxy.metrics.GatewayMetrics.RefusalReason;
import io.llmproxy.metrics.GatewayMetrics.RetryReason;
import io.llmproxy.proxy.UpstreamAttempt.Failure;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Backoff;
import io.llmproxy.routing.RoutePlan;
import io.netty.util.Timeout;
import io.vertx.core.Context;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.RequestOptions;
import java.net.ConnectException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Owns the upstream attempts of one client request: starts them, commits exactly one winner, and
 * cancels every other with a named reason (SPEC §6.3, §6.4). The commit is the point of no return:
 * before it, a failed attempt can be retried on another backend because nothing reached the client
 * and the body is held; after it, a failure ends the response. One event loop runs all of it.
 *
 * <p>This version runs one attempt at a time and commits at the winner's first body byte (or at its
 * response head when the status is an error that is passed through), so every SSE event passes the
 * moment it arrives. Racing and hedging add attempts in parallel on the same structure.
 */
public final class Dispatch {
  private final Vertx vertx;
  private final UpstreamClient client;
  private final GatewayMetrics metrics;
  private final RoutePlan plan;
  private final RetryConfig retry;
  private final RoutingConfig.TimeoutsConfig limits;
  private final Context context;
  private final Timeouts timeouts;
  private final boolean firstByteIsToken;
  private final RequestSpec spec;
  private final Downstream down;
  private final List<UpstreamAttempt> attempts = new ArrayList<>(2);

  private UpstreamAttempt winner;
  /** How the last attempt failed on its own, for the final error; null after a bad status. */
  private Failure lastFailure;
  /** The retryable status (429, 5xx) of the last attempt whose answer was dropped for a retry. */
  private int lastDiscardedStatus;
  private boolean finished;
  private int retries;
  private long retryTimer = -1;
  private Timeout totalTimer;
  private long deadlineNanos;
  private long clientFirstTokenNanos;
  private long firstByteForwardedNanos;

  /**
   * @param context  the client request's context: everything of this dispatch runs on it
   * @param timeouts where the total, first-token and idle timeouts are armed
   */
  public Dispatch(Context context, Timeouts timeouts, UpstreamClient client, GatewayMetrics metrics, RoutePlan plan,
      RoutingConfig routing, RequestSpec spec, Downstream down) {
    this.context = requireNonNull(context, "context");
    this.vertx = context.owner();
    this.timeouts = requireNonNull(timeouts, "timeouts");
    this.client = requireNonNull(client, "client");
    this.metrics = requireNonNull(metrics, "metrics");
    this.plan = requireNonNull(plan, "plan");
    this.retry = routing.retry();
    this.limits = routing.timeouts();
    this.firstByteIsToken = routing.hedge().firstToken() == FirstTokenMode.FIRST_BYTE;
    this.spec = requireNonNull(spec, "spec");
    this.down = requireNonNull(down, "down");
  }

  public void start() {
    long total = limits.total().toMillis();
    deadlineNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(total);
    totalTimer = timeouts.schedule(context, total, () -> {
      totalTimer = null;
      onTotalTimeout();
    });
    launch();
  }

  /** The client went away (or the gateway is stopping): abort every upstream request now. */
  public void cancel(CancelReason reason) {
    if (finished) {
      return;
    }
    if (retryTimer >= 0) {
      metrics.retryRefused(RefusalReason.CLIENT_GONE); // a retry was waiting for its backoff
    }
    finish();
    for (UpstreamAttempt a : attempts) {
      a.cancel(reason);
    }
  }

  // ---- what the exchange reads for metrics and the access log

  String modelLabel() {
    return spec.modelLabel();
  }

  public int attemptCount() {
    return attempts.size();
  }

  /** The backend that answered, or null. */
  public Backend winnerBackend() {
    return winner == null ? null : winner.backend();
  }

  /** The backend of the last attempt, or null when none started. */
  public Backend lastBackend() {
    return attempts.isEmpty() ? null : attempts.get(attempts.size() - 1).backend();
  }

  public Usage usage() {
    return winner == null || winner.scanner() == null ? Usage.NONE : winner.scanner().usage();
  }

  /** True when the bytes forwarded so far end at an SSE event boundary (or nothing was forwarded). */
  public boolean atEventBoundary() {
    return winner == null || winner.scanner() == null || winner.scanner().atEventBoundary();
  }

  /** nanoTime when the first token was written to the client, or 0. */
  public long clientFirstTokenNanos() {
    return clientFirstTokenNanos;
  }

  /** The winner's time from request sent to first token, or -1. */
  public long winnerTtftNanos() {
    return winner == null || winner.firstTokenNanos == 0 ? -1 : winner.firstTokenNanos - winner.sentNanos;
  }

  /**
   * Gateway overhead (see {@link GatewayMetrics#OVERHEAD}): {@code routedNanos} measured from the end
   * of the request body to the first attempt's start, plus the winner's first byte from receipt to
   * the client; -1 when there was no winner byte.
   */
  public long overheadNanos(long bodyReadNanos) {
    if (winner == null || firstByteForwardedNanos == 0 || attempts.isEmpty()) {
      return -1;
    }
    return (attempts.get(0).startNanos - bodyReadNanos) + (firstByteForwardedNanos - winner.firstByteNanos);
  }

  // ---- attempts

  private void launch() {
    RoutePlan.Pick pick = plan.next();
    if (pick == null) {
      finish();
      if (attempts.isEmpty()) {
        down.fail(OpenAiError.NO_HEALTHY_BACKEND, "Every backend for this model is at its max_concurrent limit.");
      } else if (lastFailure != null) {
        failFinally(attempts.get(attempts.size() - 1), lastFailure);
      } else {
        down.fail(OpenAiError.UPSTREAM_ERROR, "Backend " + lastBackend().name() + " answered " + lastDiscardedStatus
            + " and every other backend for this model is at its max_concurrent limit, so it was not retried.");
      }
      return;
    }
    Backend b = pick.backend();
    UpstreamAttempt a = new UpstreamAttempt(this, context, timeouts, metrics, b, pick.canary(), spec.stream(),
        firstByteIsToken, limits.firstToken().toMillis(), limits.idle().toMillis());
    attempts.add(a);
    a.start(client, options(b), spec.body());
  }

  private RequestOptions options(Backend b) {
    return new RequestOptions()
        .setMethod(spec.method())
        .setHost(b.host())
        .setPort(b.port())
        .setSsl(b.ssl())
        .setURI(b.target(spec.pathAndQuery()))
        .setConnectTimeout(limits.connect().toMillis());
  }

  /**
   * The upstream request's headers, written straight into the request once it exists (one copy of
   * the client's headers, not three): the client's forwardable headers, the request id, then the
   * backend's own headers and key.
   */
  void writeHeaders(Backend b, MultiMap headers) {
    ForwardedHeaders.copyRequest(spec.clientHeaders(), headers, spec.clientIp());
    headers.set("x-request-id", spec.requestId());
    for (Map.Entry<String, String> h : b.config().headers().entrySet()) {
      headers.set(h.getKey(), h.getValue());
    }
    String key = b.config().apiKey();
    if (key != null && !key.isEmpty()) {
      headers.set(HttpHeaders.AUTHORIZATION, "Bearer " + key);
    }
  }

  void onHead(UpstreamAttempt a) {
    if (finished || winner != null) {
      return;
    }
    int status = a.response().statusCode();
    RetryReason reason = status == 429 ? RetryReason.STATUS_429
        : status == 500 || status == 502 || status == 503 || status == 504 ? RetryReason.STATUS_5XX : null;
    if (reason != null) {
      long retryAfter = status == 429 ? Backoff.parseRetryAfterNanos(a.response().getHeader("retry-after")) : -1;
      long delay = retryDelay(retryAfter);
      if (delay >= 0) {
        lastFailure = null;
        lastDiscardedStatus = status;
        a.discard();
        retryLater(delay, reason);
        return;
      }
      commit(a); // not retried: the backend's own answer goes back
      return;
    }
    if (status < 200 || status >= 300) {
      commit(a); // a backend's 4xx goes back unchanged and is not retried
    }
    // 2xx: committed at the first body byte
  }

  void onChunk(UpstreamAttempt a, Buffer chunk, boolean firstToken) {
    if (finished) {
      return;
    }
    if (winner == null) {
      commit(a);
    } else if (a != winner) {
      return;
    }
    forward(a, chunk);
    if (firstByteForwardedNanos == 0) {
      firstByteForwardedNanos = System.nanoTime();
    }
    if (firstToken) {
      clientFirstTokenNanos = System.nanoTime();
    }
  }

  void onEnd(UpstreamAttempt a) {
    if (finished) {
      return;
    }
    if (winner == null) {
      commit(a); // a 2xx with an empty body
    }
    if (a == winner) {
      finish();
      down.end();
    }
  }

  void onFailure(UpstreamAttempt a, Failure failure) {
    if (finished) {
      return;
    }
    if (a == winner) {
      metrics.retryRefused(RefusalReason.COMMITTED);
      finish();
      down.abort(errorFor(a, failure), message(a, failure) + " after the response had started");
      return;
    }
    if (winner != null) {
      return;
    }
    lastFailure = failure;
    long delay = retryDelay(-1);
    if (delay >= 0) {
      retryLater(delay, switch (failure) {
        case CONNECT -> RetryReason.CONNECT_ERROR;
        case RESET, IDLE_TIMEOUT -> RetryReason.RESET;
        case FIRST_TOKEN_TIMEOUT -> RetryReason.FIRST_TOKEN_TIMEOUT;
      });
    } else {
      finish();
      failFinally(a, failure);
    }
  }

  private void failFinally(UpstreamAttempt last, Failure failure) {
    String msg = attempts.size() == 1
        ? message(last, failure)
        : "All " + attempts.size() + " upstream attempts failed; the last: " + message(last, failure);
    down.fail(errorFor(last, failure), msg);
  }

  /** 504 for every timeout (a connect timeout too, as nginx answers), 502 for the other failures. */
  private static OpenAiError errorFor(UpstreamAttempt a, Failure f) {
    return f == Failure.FIRST_TOKEN_TIMEOUT || f == Failure.IDLE_TIMEOUT || (f == Failure.CONNECT && isTimeout(a.cause()))
        ? OpenAiError.UPSTREAM_TIMEOUT : OpenAiError.UPSTREAM_ERROR;
  }

  private static boolean isTimeout(Throwable t) {
    return t instanceof TimeoutException || (t != null && t.getMessage() != null && t.getMessage().contains("timed out"));
  }

  private static String message(UpstreamAttempt a, Failure f) {
    String name = a.backend().name();
    Throwable t = a.cause();
    return switch (f) {
      case CONNECT -> "Backend " + name + (isTimeout(t) ? " did not accept the connection in time."
          : t instanceof ConnectException ? " refused the connection." : " could not be reached.");
      case RESET -> "Backend " + name + " closed the connection.";
      case FIRST_TOKEN_TIMEOUT -> "Backend " + name + " produced no first token within the first_token timeout.";
      case IDLE_TIMEOUT -> "Backend " + name + " sent nothing for longer than the idle timeout.";
    };
  }

  /**
   * How long to wait before the next attempt, or -1 when the failure is not retried (counted with
   * its reason). Full-jitter exponential backoff; a 429's retry-after is honoured when the retry
   * would land on a backend already tried.
   */
  private long retryDelay(long retryAfterNanos) {
    if (!retry.enabled()) {
      metrics.retryRefused(RefusalReason.DISABLED);
      return -1;
    }
    if (retries >= retry.maxRetries()) {
      metrics.retryRefused(RefusalReason.EXHAUSTED);
      return -1;
    }
    long delay = Backoff.fullJitterNanos(retry.initialWait(), retry.maxWait(), retries);
    if (retryAfterNanos > 0 && !plan.hasUntried()) {
      if (retryAfterNanos > retry.maxWait().toNanos()) {
        metrics.retryRefused(RefusalReason.RETRY_AFTER_TOO_LONG);
        return -1;
      }
      delay = Math.max(delay, retryAfterNanos);
    }
    if (System.nanoTime() + delay >= deadlineNanos) {
      metrics.retryRefused(RefusalReason.DEADLINE);
      return -1;
    }
    return delay;
  }

  private void retryLater(long delayNanos, RetryReason reason) {
    retries++;
    metrics.retry(reason);
    long ms = TimeUnit.NANOSECONDS.toMillis(delayNanos);
    if (ms <= 0) {
      launch();
      return;
    }
    retryTimer = vertx.setTimer(ms, id -> {
      retryTimer = -1;
      if (!finished) {
        launch();
      }
    });
  }

  private void commit(UpstreamAttempt a) {
    winner = a;
    a.markCommitted();
    for (UpstreamAttempt other : attempts) {
      if (other != a) {
        other.cancel(CancelReason.HEDGE_LOSER);
      }
    }
    down.drainHandler(a::resume);
    down.commit(a.backend(), attempts.size(), a.response());
  }

  private void forward(UpstreamAttempt a, Buffer chunk) {
    if (!down.write(chunk)) {
      a.pause();
    }
  }

  private void onTotalTimeout() {
    if (finished) {
      return;
    }
    UpstreamAttempt w = winner;
    finish();
    for (UpstreamAttempt a : attempts) {
      a.cancel(CancelReason.TIMEOUT);
    }
    String msg = "The request did not complete within the total timeout of " + ValueParsers.format(limits.total())
        + " (routing.timeouts.total).";
    if (w == null) {
      down.fail(OpenAiError.UPSTREAM_TIMEOUT, msg);
    } else {
      down.abort(OpenAiError.UPSTREAM_TIMEOUT, msg);
    }
  }

  private void finish() {
    finished = true;
    if (totalTimer != null) {
      totalTimer.cancel();
      totalTimer = null;
    }
    if (retryTimer >= 0) {
      vertx.cancelTimer(retryTimer);
      retryTimer = -1;
    }
  }
}
