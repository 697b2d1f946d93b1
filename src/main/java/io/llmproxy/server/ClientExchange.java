package io.llmproxy.server;

import io.llmproxy.api.ClientText;
import io.llmproxy.api.DeclaredLength;
import io.llmproxy.api.Disconnect;
import io.llmproxy.api.LingeringClose;
import io.llmproxy.api.OpenAiError;
import io.llmproxy.auth.AccessControl;
import io.llmproxy.auth.ApiKey;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.metrics.GatewayMetrics.CancelReason;
import io.llmproxy.proxy.Chunks;
import io.llmproxy.proxy.Dispatch;
import io.llmproxy.proxy.Downstream;
import io.llmproxy.proxy.ForwardedHeaders;
import io.llmproxy.proxy.RequestBody;
import io.llmproxy.proxy.RequestBody.InvalidBodyException;
import io.llmproxy.proxy.RequestSpec;
import io.llmproxy.proxy.Timeouts;
import io.llmproxy.proxy.UpstreamClient;
import io.llmproxy.proxy.Usage;
import io.llmproxy.proxy.UsageChunkFilter;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.CandidateGroup;
import io.llmproxy.routing.Router;
import io.llmproxy.usage.UsageEvent;
import io.netty.buffer.ByteBuf;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.netty.handler.codec.DecoderException;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.net.SocketAddress;
import java.net.InetAddress;

/**
 * One client request to a proxied route, from the first byte to the access-log line (SPEC §5): the
 * client-to-proxy leg (request id, body with its size cap, {@code model} and {@code stream}, model
 * mapping, candidates) and the proxy-to-client leg a {@link Dispatch} drives. The client's close is
 * watched from the moment the request arrives, so a client that leaves during prefill aborts the
 * upstream request at once. Access control (key, limits, quota) runs before the body is read; the
 * model rule once the body names the model. Ends exactly once, with one metrics update, one log line,
 * the key's concurrency released, and one usage event for a request that reached a backend.
 */
final class ClientExchange implements Downstream {
  /** HTTP/2 error codes of a stream reset (RFC 9113 §7); on HTTP/1 any reset closes the connection. */
  private static final long H2_INTERNAL_ERROR = 0x2;
  private static final long H2_CANCEL = 0x8;
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(ClientExchange.class);
  /** The gateway's own response headers, encoded once (no per-response validation or encoding). */
  private static final CharSequence X_BACKEND = HttpHeaders.createOptimized("x-llmproxy-backend");
  private static final CharSequence X_ATTEMPTS = HttpHeaders.createOptimized("x-llmproxy-attempts");
  private static final CharSequence X_HEDGED = HttpHeaders.createOptimized("x-llmproxy-hedged");
  /** A request header the client may send to turn hedging off for its request. */
  private static final CharSequence X_HEDGE = HttpHeaders.createOptimized("x-llmproxy-hedge");

  /** nginx's code for "client closed request", used in metrics and logs only. */
  static final int CLIENT_CLOSED = 499;
  /** The most a request body buffer holds before any of the body has arrived. */
  private static final int INITIAL_BODY_CAPACITY = 64 * 1024;
  /** How long an oversized upload is read and dropped before the connection closes. */
  private static final long LINGER_MS = 5_000;

  /** How a path is proxied. */
  enum Route {
    /** {@code /v1/chat/completions}, {@code /v1/completions}, {@code /v1/embeddings}: JSON with a model. */
    MODEL(true, false),
    /** Any other {@code /v1/*}: routed by the body's model when it has one. */
    PASSTHROUGH(false, false),
    /** TGI's {@code /generate_stream}: always a stream. */
    PASSTHROUGH_STREAM(false, true);

    final boolean requiresModel;
    final boolean alwaysStream;

    Route(boolean requiresModel, boolean alwaysStream) {
      this.requiresModel = requiresModel;
      this.alwaysStream = alwaysStream;
    }
  }

  private final GatewayServices services;
  private final Vertx vertx;
  /** The client connection's context (its event loop): the timers and the dispatch run on it. */
  private final Context context;
  private final UpstreamClient client;
  private final HttpServerRequest req;
  private final HttpServerResponse resp;
  private final Route route;
  private final long receivedNanos = System.nanoTime();
  private final String requestId;

  private Buffer body;
  private long bodyReadNanos;
  private String clientModel;
  private String sentModel;
  private boolean stream;
  private Dispatch dispatch;
  private boolean done;
  /** The body's read timeout ({@code limits.client_body_timeout}) while the body is arriving; null otherwise. */
  private Timeouts.Quiet bodyTimer;
  /** Runs while the client's write queue is full ({@code limits.client_send_timeout}); null otherwise. */
  private Timeouts.Timer sendTimer;
  private boolean sseResponse;
  private int status;
  /** The status of the response the backend gave (status says what the client got, 499 if it left). */
  private int upstreamStatus;
  private String error;
  private long bytesOut;
  /** The client's key (auth on), also for a request a limit refused; null otherwise. */
  private ApiKey key;
  /** Admitted by access control: the key holds one request in flight until {@link #complete}. */
  private boolean admitted;
  private InetAddress clientAddress;
  private boolean clientAddressResolved;
  /** The gateway asked the backend for the stream's usage; the client did not. */
  private boolean stripUsage;
  private UsageChunkFilter usageFilter;

  ClientExchange(GatewayServices services, Vertx vertx, UpstreamClient client, HttpServerRequest req, Route route) {
    this.services = services;
    this.vertx = vertx;
    this.context = vertx.getOrCreateContext();
    this.client = client;
    this.req = req;
    this.resp = req.response();
    this.route = route;
    this.requestId = RequestIds.fromClientOrNew(req.getHeader(ForwardedHeaders.X_REQUEST_ID));
  }

  void start() {
    try {
      begin();
    } catch (RuntimeException e) {
      internalError(e);
    }
  }

  private void begin() {
    resp.closeHandler(v -> onClientClosed());
    AccessControl access = services.access();
    if (access.active()) {
      AccessControl.Decision d = access.admit(req.getHeader(HttpHeaders.AUTHORIZATION), this::clientAddress);
      key = d.key();
      if (!d.admitted()) {
        refuse(d);
        return;
      }
      admitted = key != null;
    }
    long cap = services.config().limits().maxBodySizeBytes();
    long declared = DeclaredLength.of(req);
    if (declared == DeclaredLength.INVALID) {
      rejectAndClose(OpenAiError.INVALID_REQUEST, "Content-Length is not a number.");
      return;
    }
    if (declared > cap) {
      rejectAndClose(OpenAiError.REQUEST_TOO_LARGE, tooLargeMessage(cap));
      return;
    }
    if ("100-continue".equalsIgnoreCase(req.getHeader(HttpHeaders.EXPECT))) {
      resp.writeContinue(); // only now that the declared size is known to fit
    }
    startBodyTimer(() -> rejectAndClose(OpenAiError.REQUEST_TIMEOUT, "The request body stopped arriving: nothing for "
        + services.config().limits().clientBodyTimeout().toMillis() + " ms (limits.client_body_timeout)."));
    req.handler(chunk -> {
      if (done) {
        return;
      }
      bodyArrived();
      if ((body == null ? 0 : body.length()) + (long) chunk.length() > cap) {
        rejectAndClose(OpenAiError.REQUEST_TOO_LARGE, tooLargeMessage(cap));
        return;
      }
      if (body == null && chunk.length() == declared) {
        body = chunk; // the whole body in one piece, kept as it came (each chunk is a copy of its own)
        return;
      }
      if (body == null) {
        // A size hint only: a client declaring a large body is not given the memory before it sends it.
        body = Buffer.buffer((int) Math.min(declared >= 0 ? declared : 1024, INITIAL_BODY_CAPACITY));
      }
      body.appendBuffer(chunk);
    });
    // A chunked body the HTTP decoder cannot read (a chunk size that is not hex, chunk data not ended
    // by CRLF): Vert.x tells the request, then closes the connection before anything written now
    // would be flushed, so no answer can go out. It is counted and logged as the 400 it is, with
    // why, not as a client that left. (A reset or a close comes as an IOException or Vert.x's
    // HttpClosedException, which the close handler deals with.)
    req.exceptionHandler(t -> {
      if (!done && (t instanceof DecoderException || t instanceof IllegalArgumentException)) {
        status = OpenAiError.INVALID_REQUEST.status();
        error = OpenAiError.INVALID_REQUEST.code() + ": the request body is not valid chunked transfer coding"
            + (t.getMessage() == null ? "" : " (" + t.getMessage() + ")");
        complete();
      }
    });
    req.endHandler(v -> {
      cancelBodyTimer();
      if (body == null) {
        body = Buffer.buffer(0);
      }
      if (!done) {
        try {
          onBody();
        } catch (RuntimeException e) {
          internalError(e);
        }
      }
    });
  }

  /**
   * A client that stops sending its body (gone without a FIN, or trickling) would hold its connection,
   * its buffer and, with auth on, one of its key's concurrency slots for ever: {@code onTimeout} runs
   * once {@code limits.client_body_timeout} passes with no byte arriving ({@link #bodyArrived} on
   * each chunk, {@link #cancelBodyTimer} at the end).
   */
  private void startBodyTimer(Runnable onTimeout) {
    long timeoutNanos = services.config().limits().clientBodyTimeout().toNanos();
    if (timeoutNanos > 0) {
      bodyTimer = services.timeouts().quiet(context, timeoutNanos, () -> {
        if (!done) {
          onTimeout.run();
        }
      });
    }
  }

  private void bodyArrived() {
    if (bodyTimer != null) {
      bodyTimer.touch(System.nanoTime());
    }
  }

  private void cancelBodyTimer() {
    if (bodyTimer != null) {
      bodyTimer.cancel();
      bodyTimer = null;
    }
  }

  private static String tooLargeMessage(long cap) {
    return "The request body is larger than the limit of " + cap + " bytes (limits.max_body_size).";
  }

  private void onBody() {
    bodyReadNanos = System.nanoTime();
    RequestBody parsed;
    if (route.requiresModel) {
      try {
        parsed = RequestBody.parse(body);
      } catch (InvalidBodyException e) {
        reject(OpenAiError.INVALID_REQUEST, e.getMessage(), e.param());
        return;
      }
    } else {
      parsed = parseOptional(body);
    }
    clientModel = parsed.model();
    stream = parsed.stream() || route.alwaysStream;
    boolean named = clientModel != null && !clientModel.isEmpty();
    if (!named && route.requiresModel) {
      // a bad request whatever the key: said before the key's model rule, which has no model to judge
      reject(OpenAiError.INVALID_REQUEST, "You must provide a model parameter.", "model");
      return;
    }
    if (key != null) {
      AccessControl.Decision d = services.access().checkModel(key, named ? clientModel : null);
      if (d != null) {
        reject(d.error(), d.message(), "model");
        return;
      }
    }
    Router router = services.router();
    CandidateGroup group;
    if (!named) {
      group = router.all();
    } else {
      sentModel = router.map(clientModel);
      group = router.candidates(sentModel);
      if (group.isEmpty()) {
        reject(OpenAiError.MODEL_NOT_FOUND,
            "The model '" + ClientText.clip(clientModel) + "' does not exist or no backend serves it.", "model");
        return;
      }
    }
    var affinity = router.config().routing().sessionAffinity();
    String affinityKey = affinity == null ? null : req.getHeader(affinity.header());
    // Usage is needed (quota, limits, the usage hook): a stream is asked for it, and the client's copy
    // loses the usage chunk again if it did not ask for it itself.
    stripUsage = services.usage() != null && stream && route == Route.MODEL && !parsed.includeUsage()
        && !req.path().endsWith("/embeddings");
    Buffer upstreamBody = parsed.rewrite(sentModel, stripUsage);
    RequestSpec spec = new RequestSpec(req.method().toNetty(), pathAndQuery(), req.headers(), clientIp(), requestId,
        upstreamBody, stream, clientModel, sentModel);
    boolean hedgeable = !"off".equalsIgnoreCase(req.getHeader(X_HEDGE));
    dispatch = new Dispatch(context, client, services.proxy(), router.config().routing(),
        router.plan(clientModel, sentModel, stream, group, affinityKey), spec, this, hedgeable);
    dispatch.start();
  }

  /** The request target in origin form, also when the client sent the absolute form ({@code POST http://host/v1/...}). */
  private String pathAndQuery() {
    String query = req.query();
    return query == null ? req.path() : req.path() + '?' + query;
  }

  /** Bodies of pass-through routes may be anything; the model is used only when they are JSON with one. */
  private static RequestBody parseOptional(Buffer body) {
    if (body.length() == 0 || body.getByte(0) != '{') {
      return RequestBody.opaque(body);
    }
    try {
      return RequestBody.parse(body);
    } catch (InvalidBodyException e) {
      return RequestBody.opaque(body);
    }
  }

  private String clientIp() {
    SocketAddress remote = req.remoteAddress();
    return remote == null ? null : remote.hostAddress();
  }

  /** The client's address: the peer's, or from X-Forwarded-For when the peer is a trusted proxy. */
  private InetAddress clientAddress() {
    if (!clientAddressResolved) {
      clientAddressResolved = true;
      clientAddress = services.access().addresses().of(req);
    }
    return clientAddress;
  }

  /**
   * Refuses a request access control stopped, before its body was read: the body is read and
   * dropped, then the error goes out, so the connection stays usable. A client that waits for
   * {@code 100 Continue}, or declares a large body, is answered at once and the connection closed.
   */
  private void refuse(AccessControl.Decision d) {
    if (d.retryAfter() != null) {
      resp.putHeader(HttpHeaders.RETRY_AFTER, d.retryAfter());
    }
    services.access().rateLimitHeaders(d.key(), resp.headers());
    long declared = DeclaredLength.of(req);
    if ("100-continue".equalsIgnoreCase(req.getHeader(HttpHeaders.EXPECT)) || declared == DeclaredLength.INVALID
        || declared > INITIAL_BODY_CAPACITY) {
      rejectAndClose(d.error(), d.message());
      return;
    }
    long[] dropped = {0};
    startBodyTimer(() -> rejectAndClose(d.error(), d.message()));
    req.handler(chunk -> {
      bodyArrived();
      // a body with no declared size is dropped up to the same bound, then the connection closes
      if ((dropped[0] += chunk.length()) > INITIAL_BODY_CAPACITY && !done) {
        rejectAndClose(d.error(), d.message());
      }
    });
    req.endHandler(v -> {
      cancelBodyTimer();
      reject(d.error(), d.message(), null);
    });
  }

  // ---- Downstream: driven by the dispatch

  @Override
  public void commit(Backend backend, int attempts, boolean hedged, HttpResponse response) {
    status = response.status().code();
    upstreamStatus = status;
    resp.setStatusCode(status);
    String message = response.status().reasonPhrase();
    if (message != null && !message.isEmpty() && !message.equals(HttpResponseStatus.valueOf(status).reasonPhrase())) {
      resp.setStatusMessage(message); // the backend's own wording; the standard one is already there
    }
    MultiMap out = resp.headers();
    ForwardedHeaders.copyResponse(response.headers(), out);
    out.set(ForwardedHeaders.X_REQUEST_ID, requestId);
    out.set(X_BACKEND, backend.name());
    out.set(X_ATTEMPTS, Integer.toString(attempts));
    if (hedged) {
      out.set(X_HEDGED, "true");
    }
    services.access().rateLimitHeaders(key, out);
    sseResponse = dispatch.winnerIsEventStream();
    if (stripUsage && sseResponse && status / 100 == 2) {
      usageFilter = new UsageChunkFilter();
      out.remove(HttpHeaders.CONTENT_LENGTH); // the usage event it takes out makes the body shorter
    }
    if (!out.contains(HttpHeaders.CONTENT_LENGTH)) {
      resp.setChunked(true);
    }
  }

  @Override
  public boolean write(Buffer chunk) {
    if (usageFilter != null) {
      chunk = usageFilter.filter(chunk);
      if (chunk.length() == 0) {
        return writable();
      }
    }
    bytesOut += chunk.length();
    writeHandedOn(chunk);
    return writable();
  }

  /**
   * Writes a chunk as the backend's connection handed it on: its memory is pooled and goes back when
   * the handing-on returns ({@link io.llmproxy.proxy.UpstreamConnection.Listener#onContent}), and
   * Vert.x passes a buffer that is not its own heap buffer to Netty as unreleasable. So it is retained
   * here and released when the write completes or fails (a closed connection fails the writes still
   * queued in it). A chunk the usage filter rebuilt is on the heap already.
   */
  private void writeHandedOn(Buffer chunk) {
    ByteBuf bytes = Chunks.bytes(chunk);
    if (!Chunks.pooled(bytes)) {
      resp.write(chunk);
      return;
    }
    bytes.retain();
    Future<Void> written;
    try {
      written = resp.write(chunk);
    } catch (RuntimeException e) {
      bytes.release();
      throw e;
    }
    written.onComplete(r -> bytes.release());
  }

  /**
   * False when the client's write queue is full (the dispatch then pauses the backend). From then on
   * the client has {@code limits.client_send_timeout} to take some of it: a client that reads nothing
   * more (hung, or gone without a FIN) would otherwise hold the stream, its backend connection and
   * the backend's GPU until the total timeout. It is disconnected instead, as if it had gone.
   */
  private boolean writable() {
    if (!resp.writeQueueFull()) {
      return true;
    }
    long timeoutMs = services.config().limits().clientSendTimeout().toMillis();
    if (sendTimer == null && timeoutMs > 0) {
      sendTimer = services.timeouts().schedule(context, timeoutMs, () -> {
        sendTimer = null;
        if (!done && resp.writeQueueFull()) {
          disconnectSlowClient(timeoutMs);
        }
      });
    }
    return false;
  }

  private void disconnectSlowClient(long timeoutMs) {
    clientGone("client_send_timeout: the client took none of the response for " + timeoutMs
        + " ms (limits.client_send_timeout)", CancelReason.CLIENT_DISCONNECT);
    if (!Disconnect.now(req.connection())) {
      resp.reset(H2_CANCEL); // HTTP/2: this stream only
    }
  }

  private void cancelSendTimer() {
    if (sendTimer != null) {
      sendTimer.cancel();
      sendTimer = null;
    }
  }

  /** What the usage filter still holds: the start of an event whose end never came. */
  private void flushFiltered() {
    if (usageFilter != null) {
      Buffer rest = usageFilter.rest();
      if (rest.length() > 0) {
        bytesOut += rest.length();
        resp.write(rest);
      }
    }
  }

  @Override
  public void drainHandler(Runnable onDrain) {
    resp.drainHandler(v -> {
      cancelSendTimer();
      onDrain.run();
    });
  }

  @Override
  public void end() {
    flushFiltered();
    resp.end();
    complete();
  }

  @Override
  public void fail(OpenAiError err, String message) {
    reject(err, message, null);
  }

  @Override
  public void abort(OpenAiError err, String message) {
    error = err.code() + ": " + message;
    if (sseResponse && resp.isChunked()) {
      flushFiltered();
      // Close any partial event first, then one error event, then the end of the stream.
      String prefix = dispatch.atEventBoundary() ? "" : "\n\n";
      String event = prefix + "data: " + err.json(message, null) + "\n\n";
      bytesOut += event.length();
      resp.end(Buffer.buffer(event));
    } else {
      // No way to say it in-band: HTTP/1 cuts the connection, HTTP/2 resets the stream with an
      // error code (a reset with none, NO_ERROR, reads to curl and nghttp2 as a complete body).
      resp.reset(H2_INTERNAL_ERROR);
    }
    complete();
  }

  // ---- the gateway's own answers

  /** Answers with an error of the gateway's own before anything was sent. */
  private void reject(OpenAiError err, String message, String param) {
    if (done) {
      return;
    }
    status = err.status();
    error = err.code() + ": " + message;
    resp.setStatusCode(err.status())
        .putHeader(HttpHeaders.CONTENT_TYPE, "application/json")
        .putHeader(ForwardedHeaders.X_REQUEST_ID, requestId);
    if (dispatch != null && dispatch.attemptCount() > 0) {
      resp.putHeader(X_ATTEMPTS, Integer.toString(dispatch.attemptCount()));
    }
    Buffer b = err.body(message, param);
    bytesOut += b.length();
    resp.end(b);
    complete();
  }

  /**
   * An error answered before the rest of the request was read: on HTTP/1.x the connection then
   * closes, lingering up to {@link #LINGER_MS} while the client is still sending; on HTTP/2 only the
   * request's stream ends ({@link LingeringClose}).
   */
  private void rejectAndClose(OpenAiError err, String message) {
    LingeringClose.answer(vertx, req, LINGER_MS, () -> reject(err, message, null));
  }

  /** A bug in the gateway: said in the log, and answered (a 500 if nothing went out yet) instead of hanging. */
  private void internalError(RuntimeException e) {
    LOG.error("request {} failed inside the gateway", requestId, e);
    if (done) {
      return;
    }
    if (dispatch != null) {
      dispatch.cancel(CancelReason.CLIENT_DISCONNECT);
    }
    if (resp.headWritten()) {
      resp.reset(H2_INTERNAL_ERROR);
      complete();
    } else {
      reject(OpenAiError.INTERNAL_ERROR, "The gateway failed to handle this request (request id " + requestId + ").", null);
    }
  }

  private void onClientClosed() {
    if (done) {
      return;
    }
    // While draining, connections still open at the drain timeout are closed by the gateway itself.
    boolean shutdown = services.readiness().isDraining();
    clientGone(shutdown ? "shutdown" : "client_disconnect",
        shutdown ? CancelReason.SHUTDOWN : CancelReason.CLIENT_DISCONNECT);
  }

  /** The client is gone (or is let go): 499, the upstream attempts cancelled for {@code reason}, the exchange ended. */
  private void clientGone(String error, CancelReason reason) {
    status = CLIENT_CLOSED;
    this.error = error;
    if (dispatch != null) {
      dispatch.cancel(reason);
    }
    complete();
  }

  /** Ends the exchange: metrics and the access-log line, exactly once. */
  private void complete() {
    if (done) {
      return;
    }
    done = true;
    cancelBodyTimer();
    cancelSendTimer();
    if (admitted) {
      services.access().release(key);
    }
    long now = System.nanoTime();
    GatewayMetrics m = services.metrics();
    Backend backend = dispatch == null ? null : dispatch.winnerBackend();
    if (backend == null && dispatch != null) {
      backend = dispatch.lastBackend();
    }
    String backendName = backend == null ? "none" : backend.name();
    m.requestCompleted(clientModel, backendName, status, stream, now - receivedNanos);
    double ttftMs = -1;
    Usage usage = Usage.NONE;
    if (dispatch != null) {
      long firstToken = dispatch.clientFirstTokenNanos();
      if (firstToken > 0) {
        ttftMs = (firstToken - receivedNanos) / 1e6;
        m.clientTtft(clientModel, firstToken - receivedNanos);
      }
      long overhead = dispatch.overheadNanos(bodyReadNanos);
      if (overhead >= 0) {
        m.overhead(overhead);
      }
      usage = dispatch.usage();
      dispatch.completed();
      if (usage.known() && dispatch.winnerBackend() != null) {
        m.tokens(clientModel, backendName, usage.promptTokens(), usage.completionTokens());
      }
      if (dispatch.attemptCount() > 0) {
        account(usage, now);
      }
    }
    AccessLog log = services.accessLog();
    if (log.enabled()) {
      // resolved already for a key's address rules, or resolved now (as access control would)
      String ip = clientAddressResolved && clientAddress != null ? clientAddress.getHostAddress()
          : services.access().addresses().logged(req);
      log.log(new AccessLog.Entry(System.currentTimeMillis(), requestId, req.method().name(), req.path(), ip, clientModel, sentModel,
          backend == null ? null : backend.name(), dispatch == null ? 0 : dispatch.attemptCount(),
          dispatch != null && dispatch.hedgedRequest(), status, stream, ttftMs, (now - receivedNanos) / 1e6, usage.promptTokens(),
          usage.completionTokens(), bytesOut, error, key == null ? null : key.name(), key == null ? null : key.userId()));
    }
  }

  /**
   * A request that reached a backend: its tokens count against the key's quota and tokens a minute,
   * and its usage event is recorded, once. Without usage from the backend (or for a stream abandoned
   * before its usage chunk), the counts of a successful response are estimated: the prompt at 4 bytes
   * of request body a token, the output at one token an output event (a stream) or 4 bytes of response
   * (otherwise; none for embeddings, which generate no tokens). A backend's error without usage
   * generated nothing and counts no tokens.
   */
  private void account(Usage reported, long now) {
    UsageLedger ledger = services.usage();
    if (ledger == null && key == null) {
      return;
    }
    long prompt = 0;
    long completion = 0;
    boolean estimated = false;
    if (dispatch.winnerBackend() != null) {
      if (reported.known()) {
        prompt = Math.max(0, reported.promptTokens());
        completion = Math.max(0, reported.completionTokens());
      } else if (upstreamStatus / 100 == 2) {
        estimated = true;
        prompt = (body.length() + 3) / 4;
        completion = stream ? dispatch.outputEvents() : req.path().equals("/v1/embeddings") ? 0 : (bytesOut + 3) / 4;
      }
    }
    services.access().tokensUsed(key, prompt + completion);
    if (ledger != null) {
      Backend winner = dispatch.winnerBackend();
      ledger.record(new UsageEvent(requestId, services.access().clock().instant(), key == null ? null : key.id(),
          key == null ? null : key.name(), key == null ? null : key.userId(), clientModel,
          winner == null ? null : winner.name(), prompt, completion, estimated, stream, status,
          status == CLIENT_CLOSED, (now - receivedNanos) / 1e6));
    }
  }
}
