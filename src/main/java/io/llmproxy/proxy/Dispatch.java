package io.llmproxy.proxy;

import static java.util.Objects.requireNonNull;

import io.llmproxy.api.OpenAiError;
import io.llmproxy.config.RoutingConfig;
import io.llmproxy.config.RoutingConfig.FirstTokenMode;
import io.llmproxy.config.RoutingConfig.HedgeConfig;
import io.llmproxy.config.RoutingConfig.RetryConfig;
import io.llmproxy.config.ValueParsers;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.metrics.GatewayMetrics.CancelReason;
import io.llmproxy.metrics.GatewayMetrics.HedgeOutcome;
import io.llmproxy.metrics.GatewayMetrics.RefusalReason;
import io.llmproxy.metrics.GatewayMetrics.RetryReason;
import io.llmproxy.proxy.UpstreamAttempt.Failure;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Backoff;
import io.llmproxy.routing.RoutePlan;
import io.llmproxy.stats.LatencyStats;
import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpVersion;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.internal.buffer.BufferInternal;
import java.net.ConnectException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Owns the upstream attempts of one client request: starts them, commits exactly one winner, and
 * cancels every other with a named reason (SPEC §6.3, §6.4). The commit is the point of no return:
 * before it, nothing has reached the client and the body is held, so a failed attempt can be
 * replaced and a slow one raced; after it, no attempt is ever started again and a failure ends the
 * response. One event loop runs all of it.
 *
 * <p>Two ways to run:
 * <ul>
 *   <li><b>Single</b> (hedging off, opted out with {@code x-llmproxy-hedge: off}, or one routable
 *       candidate, the others being down or cooling):
 *       one attempt at a time, with retries; the commit is at the winner's first body byte (or at
 *       the head of an error that is passed through), so every SSE event passes the moment it
 *       arrives. Nothing is added.</li>
 *   <li><b>Hedged</b>: while a candidate has fewer than {@code min_samples} samples, the request
 *       races up to {@code max_parallel} candidates at once, the unknown first (cold start);
 *       otherwise the primary goes alone and, when it has produced no first token within the
 *       threshold (a percentile of its recent TTFT, clamped), the next best candidate gets the same
 *       request, up to {@code max_parallel} in flight. A connect error, 5xx or 429 starts the next
 *       attempt at once. The winner is the first attempt whose stream carries generated output
 *       (or, with {@code first_token: first_byte}, any byte; not streaming: the first complete 2xx
 *       response); until then each attempt's bytes are held, and at the commit the winner's status,
 *       headers and held bytes go out in order. Extra attempts come out of the {@link
 *       io.llmproxy.routing.HedgeBudget}, asked only once a candidate for one is found; when it is
 *       spent, no hedge is sent, and that is counted.</li>
 * </ul>
 */
public final class Dispatch {
  /** Most a losing-or-undecided attempt may hold before it wins by default (a non-streaming body). */
  static final long MAX_HELD_BYTES = 16L << 20;

  private final Vertx vertx;
  private final Context context;
  private final UpstreamClient client;
  private final ProxyServices services;
  private final GatewayMetrics metrics;
  private final RoutePlan plan;
  private final RetryConfig retry;
  private final HedgeConfig hedgeConfig;
  private final RoutingConfig.TimeoutsConfig limits;
  private final boolean firstByteIsToken;
  private final RequestSpec spec;
  private final Downstream down;
  private final List<UpstreamAttempt> attempts = new ArrayList<>(2);
  /** Hedged mode: parallel attempts possible, the commit waits for the first token. */
  private final boolean hedged;

  private UpstreamAttempt winner;
  /** How the last attempt failed on its own, for the final error; null after a bad status. */
  private Failure lastFailure;
  private UpstreamAttempt lastFailed;
  /** The retryable status (429, 5xx) of the last attempt whose answer was dropped for a retry. */
  private int lastDiscardedStatus;
  private boolean finished;
  private int retries;
  private long retryTimer = -1;
  private Timeouts.Timer totalTimer;
  private Timeouts.Timer hedgeTimer;
  private long deadlineNanos;
  private long clientFirstTokenNanos;
  private long firstByteForwardedNanos;
  /** When the chunk that decided the commit arrived (hedged mode), for the overhead metric. */
  private long decidedNanos;
  /** More than one attempt was in flight at once. */
  private boolean raced;

  /**
   * @param context  the client request's context: everything of this dispatch runs on it
   * @param hedgeable whether this request may be hedged (hedging on, not opted out)
   */
  public Dispatch(Context context, UpstreamClient client, ProxyServices services, RoutingConfig routing,
      RoutePlan plan, RequestSpec spec, Downstream down, boolean hedgeable) {
    this.context = requireNonNull(context, "context");
    this.vertx = context.owner();
    this.client = requireNonNull(client, "client");
    this.services = requireNonNull(services, "services");
    this.metrics = services.metrics();
    this.plan = requireNonNull(plan, "plan");
    this.retry = routing.retry();
    this.hedgeConfig = routing.hedge();
    this.limits = routing.timeouts();
    this.firstByteIsToken = hedgeConfig.firstToken() == FirstTokenMode.FIRST_BYTE;
    this.spec = requireNonNull(spec, "spec");
    this.down = requireNonNull(down, "down");
    // One routable candidate is a plain proxy (SPEC §6.4): nothing is held, no budget is asked for.
    this.hedged = hedgeable && hedgeConfig.enabled() && hedgeConfig.maxParallel() > 1
        && plan.routableCount() > 1;
  }

  public void start() {
    long total = limits.total().toMillis();
    deadlineNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(total);
    totalTimer = services.timeouts().schedule(context, total, () -> {
      totalTimer = null;
      onTotalTimeout();
    });
    if (!hedged) {
      if (!launch(null, false)) {
        giveUp();
      }
      return;
    }
    services.budget().request();
    if (hedgeConfig.coldStartRace() && anyUnknown()) {
      race();
    } else if (launch(null, false)) {
      scheduleHedge();
    } else {
      giveUp();
    }
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

  /** The model the statistics are kept under: the name the backend is sent. */
  String statsModel() {
    return spec.sentModel();
  }

  ProxyServices services() {
    return services;
  }

  public int attemptCount() {
    return attempts.size();
  }

  /** True when more than one attempt was in flight at once (a race or a hedge). */
  public boolean hedgedRequest() {
    return raced;
  }

  /** The backend that answered, or null. */
  public Backend winnerBackend() {
    return winner == null ? null : winner.backend();
  }

  /** The backend of the last attempt, or null when none started. */
  public Backend lastBackend() {
    return attempts.isEmpty() ? null : attempts.get(attempts.size() - 1).backend();
  }

  /** Output events the winner's stream carried so far (a token estimate when the backend gives no usage). */
  public int outputEvents() {
    return winner == null || winner.scanner() == null ? 0 : winner.scanner().outputEvents();
  }

  public Usage usage() {
    return winner == null || winner.scanner() == null ? Usage.NONE : winner.scanner().usage();
  }

  /** True when the bytes forwarded so far end at an SSE event boundary (or nothing was forwarded). */
  public boolean atEventBoundary() {
    return winner == null || winner.scanner() == null || winner.scanner().atEventBoundary();
  }

  /** Whether the committed answer is an event stream ({@code text/event-stream}), as its attempt read it. */
  public boolean winnerIsEventStream() {
    return winner != null && winner.scanner() != null && winner.scanner().isSse();
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
   * Gateway overhead (see {@link GatewayMetrics#OVERHEAD}): from the end of the request body to the
   * first attempt's start, plus from the chunk that let the winner out (its first byte; hedged: the
   * one that decided the commit) to it being written to the client; -1 when nothing was written.
   */
  public long overheadNanos(long bodyReadNanos) {
    if (winner == null || firstByteForwardedNanos == 0 || attempts.isEmpty()) {
      return -1;
    }
    long released = decidedNanos != 0 ? decidedNanos : winner.firstByteNanos;
    return (attempts.get(0).startNanos - bodyReadNanos) + Math.max(0, firstByteForwardedNanos - released);
  }

  /**
   * The exchange ended: counts what the losers cost (SPEC §7: their prompt, as the winner's usage
   * reports it, and the output events they sent before they were cancelled).
   */
  public void completed() {
    if (winner == null) {
      return;
    }
    long prompt = Math.max(0, usage().promptTokens());
    long losers = 0;
    long output = 0;
    for (UpstreamAttempt a : attempts) {
      if (a != winner && a.wasSent() && a.cancelledAsLoser()) {
        losers++;
        output += a.scanner() == null ? 0 : a.scanner().outputEvents();
      }
    }
    if (losers > 0) {
      metrics.wastedTokens(prompt * losers, output);
    }
    if (winner.hedge) {
      metrics.hedge(spec.modelLabel(), HedgeOutcome.WON);
    }
  }

  // ---- attempts

  /**
   * Starts an attempt on the next candidate; false when none has room. With {@code prefer} (a race
   * entry or a hedge) only untried candidates qualify, those {@code prefer} accepts first; without
   * it (the first attempt, a retry) a tried one may come again when no other is left.
   */
  private boolean launch(java.util.function.Predicate<Backend> prefer, boolean asHedge) {
    if (finished) {
      return false; // the attempt before failed at once (a full pool) and ended the dispatch
    }
    RoutePlan.Pick pick = prefer == null ? plan.next() : plan.next(prefer);
    if (pick == null) {
      return false;
    }
    start(pick, asHedge);
    return true;
  }

  /**
   * Starts an extra attempt (a race entry or a hedge) on an untried candidate, out of the hedge
   * budget; false when none started. The candidate is picked first and the budget asked after, so a
   * token is taken only for an attempt that starts; a refusal gives the pick back and is counted.
   */
  private boolean launchExtra(java.util.function.Predicate<Backend> prefer, boolean asHedge) {
    if (finished) {
      return false;
    }
    RoutePlan.Pick pick = plan.next(prefer);
    if (pick == null) {
      return false; // no untried candidate has room: nothing to spend the budget on
    }
    if (!services.budget().tryExtra()) {
      plan.giveBack(pick);
      metrics.hedge(spec.modelLabel(), HedgeOutcome.BUDGET_EXHAUSTED);
      return false;
    }
    start(pick, asHedge);
    return true;
  }

  private void start(RoutePlan.Pick pick, boolean asHedge) {
    Backend b = pick.backend();
    UpstreamAttempt a = new UpstreamAttempt(this, context, services.timeouts(), metrics, b, pick.canary(),
        spec.stream(), firstByteIsToken, limits.firstToken().toMillis(), limits.idle().toMillis());
    a.hedge = asHedge;
    attempts.add(a);
    if (inFlight() > 1) {
      raced = true;
    }
    a.start(client, limits.connect().toMillis());
  }

  /** Nothing can be started: the final answer from what the attempts did. */
  private void giveUp() {
    finish();
    if (attempts.isEmpty()) {
      down.fail(OpenAiError.NO_HEALTHY_BACKEND, "Every backend for this model is at its max_concurrent limit.");
    } else if (lastFailure != null) {
      failFinally(lastFailed, lastFailure);
    } else {
      down.fail(OpenAiError.UPSTREAM_ERROR, "Backend " + lastBackend().name() + " answered " + lastDiscardedStatus
          + " and no other backend for this model could take the retry.");
    }
  }

  private int inFlight() {
    int n = 0;
    for (UpstreamAttempt a : attempts) {
      if (!a.isDone()) {
        n++;
      }
    }
    return n;
  }

  private boolean unknown(Backend b) {
    return services.stats().entry(b.name(), spec.sentModel(), statsKind()).window().count(services.stats().now())
        < hedgeConfig.minSamples();
  }

  private boolean anyUnknown() {
    for (Backend b : plan.group().backends()) {
      if (b.routable() && unknown(b)) {
        return true;
      }
    }
    return false;
  }

  private LatencyStats.Kind statsKind() {
    return spec.stream() ? LatencyStats.Kind.TTFT : LatencyStats.Kind.LATENCY;
  }

  /** Cold start: up to max_parallel attempts at once, the candidates with too few samples first. */
  private void race() {
    if (!launch(this::unknown, false)) {
      giveUp();
      return;
    }
    int extra = 0;
    while (inFlight() < hedgeConfig.maxParallel() && launchExtra(this::unknown, false)) {
      extra++;
    }
    if (extra > 0) {
      metrics.race(spec.modelLabel());
    } else {
      scheduleHedge();
    }
  }

  /** The hedge threshold for an attempt on {@code b}: its recent TTFT percentile (or the fixed value), clamped. */
  long thresholdNanos(Backend b) {
    LatencyStats stats = services.stats();
    // nothing known (-1): hedge only when it is very late (the maximum)
    return hedgeConfig.thresholdNanos(p -> stats.entry(b.name(), spec.sentModel(), statsKind()).window()
        .percentileNanos(p, stats.now()));
  }

  /** Arms the timer for the next hedge, after the newest attempt's threshold. */
  private void scheduleHedge() {
    cancelHedgeTimer();
    if (finished || winner != null || inFlight() >= hedgeConfig.maxParallel() || !plan.hasUntried()) {
      return;
    }
    UpstreamAttempt newest = attempts.get(attempts.size() - 1);
    long delayMs = Math.max(1, TimeUnit.NANOSECONDS.toMillis(thresholdNanos(newest.backend())));
    hedgeTimer = services.timeouts().schedule(context, delayMs, () -> {
      hedgeTimer = null;
      hedge();
    });
  }

  private void hedge() {
    if (finished || winner != null || inFlight() >= hedgeConfig.maxParallel()) {
      return;
    }
    if (launchExtra(b -> true, true)) {
      metrics.hedge(spec.modelLabel(), HedgeOutcome.SENT);
      scheduleHedge();
    }
  }

  private void cancelHedgeTimer() {
    if (hedgeTimer != null) {
      hedgeTimer.cancel();
      hedgeTimer = null;
    }
  }

  /**
   * The upstream request's line and headers for {@code b}: its target and {@code Host}, the client's
   * forwardable headers, the request id, then the backend's own headers and key, and the length of
   * the body actually sent.
   */
  HttpRequest requestHead(Backend b) {
    HttpRequest head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, spec.method(), b.target(spec.pathAndQuery()));
    HttpHeaders headers = head.headers();
    headers.set(HttpHeaderNames.HOST, b.authority());
    ForwardedHeaders.copyRequest(spec.clientHeaders(), headers, spec.clientIp());
    headers.set(ForwardedHeaders.X_REQUEST_ID, spec.requestId());
    for (Map.Entry<String, String> h : b.config().headers().entrySet()) {
      headers.set(h.getKey(), h.getValue());
    }
    String key = b.config().apiKey();
    if (key != null && !key.isEmpty()) {
      headers.set(HttpHeaderNames.AUTHORIZATION, "Bearer " + key);
    }
    int length = spec.body().length();
    HttpMethod m = spec.method();
    if (length > 0 || m.equals(HttpMethod.POST) || m.equals(HttpMethod.PUT) || m.equals(HttpMethod.PATCH)) {
      headers.set(HttpHeaderNames.CONTENT_LENGTH, length);
    }
    return head;
  }

  /** The request body, the same bytes for every attempt (its buffer is never released). */
  ByteBuf requestBody() {
    return ((BufferInternal) spec.body()).getByteBuf();
  }

  // ---- events from the attempts

  void onHead(UpstreamAttempt a) {
    if (finished || winner != null) {
      return;
    }
    int status = a.status();
    RetryReason reason = status == 429 ? RetryReason.STATUS_429
        : status == 500 || status == 502 || status == 503 || status == 504 ? RetryReason.STATUS_5XX : null;
    if (reason != null) {
      long retryAfter = status == 429
          ? Backoff.parseRetryAfterNanos(a.response().headers().get(HttpHeaderNames.RETRY_AFTER)) : -1;
      if (hedged && inFlight() > 1) {
        // Another attempt is still running: drop this answer and let it, or a replacement, win.
        lastFailure = null;
        lastDiscardedStatus = status;
        a.discard();
        replaceAtOnce(a, reason);
        return;
      }
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
    // 2xx: committed at its first byte (single) or first token / complete body (hedged)
  }

  void onChunk(UpstreamAttempt a, Buffer chunk, boolean firstToken) {
    if (finished) {
      return;
    }
    if (winner == null) {
      if (hedged) {
        a.hold(chunk);
        if (spec.stream() ? firstToken : a.heldBytes() > MAX_HELD_BYTES) {
          decidedNanos = System.nanoTime();
          commit(a, firstToken);
        }
        return;
      }
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

  /**
   * An attempt's response is complete, just before the attempt ends (and counts its outcome). With
   * no winner yet, it is the winner: a complete non-streaming 2xx answer, a stream that ended without
   * a token, or (single mode) a response without a body byte.
   */
  void onComplete(UpstreamAttempt a) {
    if (finished || winner != null) {
      return;
    }
    decidedNanos = System.nanoTime();
    commit(a, a.scanner() != null && a.scanner().firstTokenSeen());
  }

  /** An attempt's response ended (after {@link #onComplete}): the winner's ends the client's response. */
  void onEnd(UpstreamAttempt a) {
    if (finished) {
      return;
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
    lastFailed = a;
    RetryReason reason = switch (failure) {
      case CONNECT -> RetryReason.CONNECT_ERROR;
      case RESET, IDLE_TIMEOUT -> RetryReason.RESET;
      case FIRST_TOKEN_TIMEOUT -> RetryReason.FIRST_TOKEN_TIMEOUT;
    };
    if (hedged && inFlight() > 0) {
      replaceAtOnce(a, reason);
      return;
    }
    long delay = retryDelay(-1);
    if (delay >= 0) {
      retryLater(delay, reason);
    } else {
      finish();
      failFinally(a, failure);
    }
  }

  /**
   * Hedged, with other attempts still running: a failed or dropped one is replaced at once by an
   * untried candidate that can take it now, if retries are left; otherwise the others carry on
   * (never a second request to a backend already tried, one of which is still running). A failed
   * hedge's replacement is a hedge too: if it wins, the hedge won.
   */
  private void replaceAtOnce(UpstreamAttempt failed, RetryReason reason) {
    if (retries < retry.maxRetries() && retry.enabled() && plan.canTryUntried()
        && System.nanoTime() < deadlineNanos) {
      retries++;
      metrics.retry(reason);
      launch(b -> true, failed.hedge);
    }
    scheduleHedge();
  }

  private void failFinally(UpstreamAttempt last, Failure failure) {
    String msg = attempts.size() == 1
        ? message(last, failure)
        : "All " + attempts.size() + " upstream attempts failed; the last: " + message(last, failure);
    down.fail(errorFor(last, failure), msg);
  }

  /** 504 for every timeout (a connect timeout too, as nginx answers), 502 for the other failures. */
  private static OpenAiError errorFor(UpstreamAttempt a, Failure f) {
    return f == Failure.FIRST_TOKEN_TIMEOUT || f == Failure.IDLE_TIMEOUT
        || (f == Failure.CONNECT && UpstreamClient.isTimeout(a.cause()))
        ? OpenAiError.UPSTREAM_TIMEOUT : OpenAiError.UPSTREAM_ERROR;
  }

  private static String message(UpstreamAttempt a, Failure f) {
    String name = a.backend().name();
    Throwable t = a.cause();
    return switch (f) {
      case CONNECT -> t instanceof UpstreamClient.NoSocketException
          ? "The gateway could not open a connection to backend " + name + " (it is out of sockets)."
          : t instanceof UpstreamClient.PoolLimitException ? t.getMessage()
          : "Backend " + name + (UpstreamClient.isTimeout(t) ? " did not accept the connection in time."
              : t instanceof ConnectException ? " refused the connection." : " could not be reached.");
      case RESET -> "Backend " + name + " closed the connection.";
      case FIRST_TOKEN_TIMEOUT -> "Backend " + name + " produced no first token within the first_token timeout.";
      case IDLE_TIMEOUT -> "Backend " + name + " sent nothing for longer than the idle timeout.";
    };
  }

  /**
   * How long to wait before the next attempt, or -1 when the failure is not retried (counted with
   * its reason). Full-jitter exponential backoff; a 429's retry-after is honoured when the retry
   * would land on a backend already tried, which it does when no untried candidate can take it now
   * (those down, cooling or at max_concurrent do not count). Hedged, a retry to an untried candidate
   * starts at once.
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
    boolean toUntried = plan.canTryUntried();
    long delay = hedged && toUntried ? 0 : Backoff.fullJitterNanos(retry.initialWait(), retry.maxWait(), retries);
    if (retryAfterNanos > 0 && !toUntried) {
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
      relaunch();
      return;
    }
    retryTimer = vertx.setTimer(ms, id -> {
      retryTimer = -1;
      if (!finished) {
        relaunch();
      }
    });
  }

  private void relaunch() {
    if (!launch(null, false)) {
      giveUp();
    } else if (hedged) {
      scheduleHedge();
    }
  }

  private void commit(UpstreamAttempt a) {
    commit(a, false);
  }

  /**
   * {@code a} answers the client: its head and the bytes held so far go out first, then the others
   * are cancelled (the client's first token does not wait for their sockets to close).
   */
  private void commit(UpstreamAttempt a, boolean firstTokenHeld) {
    winner = a;
    cancelHedgeTimer();
    a.markCommitted();
    down.drainHandler(a::resume);
    down.commit(a.backend(), attempts.size(), raced, a.response());
    flushHeld(a, firstTokenHeld);
    for (UpstreamAttempt other : attempts) {
      if (other != a) {
        other.cancel(CancelReason.HEDGE_LOSER);
      }
    }
  }

  /** Hedged: the winner's bytes held before the commit go out in order. */
  private void flushHeld(UpstreamAttempt a, boolean firstTokenIncluded) {
    List<Buffer> held = a.takeHeld();
    for (Buffer b : held) {
      forward(a, b);
    }
    if (!held.isEmpty()) {
      firstByteForwardedNanos = System.nanoTime();
      if (firstTokenIncluded) {
        clientFirstTokenNanos = firstByteForwardedNanos;
      }
    }
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
    cancelHedgeTimer();
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
