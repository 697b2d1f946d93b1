package io.llmproxy.server;

import io.llmproxy.api.ClientText;
import io.llmproxy.api.Http10Framing;
import io.llmproxy.api.HttpVersionGate;
import io.llmproxy.api.OpenAiError;
import io.llmproxy.api.Throwables;
import io.llmproxy.auth.AccessControl;
import io.llmproxy.auth.ApiKey;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.proxy.ForwardedHeaders;
import io.llmproxy.proxy.UpstreamClient;
import io.llmproxy.server.ClientExchange.Route;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The gateway on one event loop: an HTTP server sharing the listen port with the other loops' and
 * this loop's own upstream pool. Dispatches by path (SPEC §4).
 */
final class GatewayVerticle extends VerticleBase {
  /** The longest request line and the largest header block a client may send, in bytes. */
  static final int MAX_REQUEST_LINE = 64 * 1024;
  static final int MAX_HEADERS = 64 * 1024;
  /** The path of OpenAI's "retrieve model": the rest of the path is the model's id. */
  private static final String MODEL_PATH = "/v1/models/";

  private final GatewayServices services;
  private final int eventLoops;
  private final int port;
  private volatile Duration drainTimeout;
  private HttpServer server;
  /** Null when client_keep_alive_timeout is 0. */
  private ClientKeepAlive keepAlive;
  private UpstreamClient client;

  GatewayVerticle(GatewayServices services, int eventLoops, int port, Duration drainTimeout) {
    this.services = services;
    this.eventLoops = eventLoops;
    this.port = port;
    this.drainTimeout = drainTimeout;
  }

  @Override
  public Future<?> start() {
    client = new UpstreamClient(context, services.config(), eventLoops);
    HttpServerOptions options = new HttpServerOptions()
        .setTcpNoDelay(true)
        .setIdleTimeout(0)
        .setMaxInitialLineLength(MAX_REQUEST_LINE)
        .setMaxHeaderSize(MAX_HEADERS)
        .setDecompressionSupported(false)
        .setCompressionSupported(false)
        .setHandle100ContinueAutomatically(false) // answered once the size is checked
        // Every response write happens on the connection's own event loop (the upstream pool and
        // the timeout callbacks are on it too), so Vert.x may skip its cross-thread write queue.
        .setStrictThreadMode(true)
        // No WebSocket is ever served: keep the compression extension handler out of the pipeline.
        .setPerFrameWebSocketCompressionSupported(false)
        .setPerMessageWebSocketCompressionSupported(false)
        // Cancelling a generation is a stream reset, and a client that shares one connection among
        // many users resets often: Vert.x's guard against rapid-reset floods (200 in 30 s) closed such
        // a connection with every stream on it. The attack sends thousands a second; this is 166.
        .setHttp2RstFloodMaxRstFramePerWindow(5_000);
    // HTTP/2 takes the headers HTTP/1 takes (Vert.x's default list is 8 KiB, and a client past 1.25
    // times it lost the whole connection, not only its request).
    options.getInitialSettings().setMaxHeaderListSize(MAX_HEADERS);
    server = vertx.createHttpServer(options).invalidRequestHandler(GatewayVerticle::invalidRequest)
        .connectionHandler(HttpVersionGate::install)
        .requestHandler(this::handle);
    Duration keepAliveTimeout = services.config().limits().clientKeepAliveTimeout();
    if (!keepAliveTimeout.isZero()) {
      keepAlive = new ClientKeepAlive(vertx, keepAliveTimeout.toNanos());
    }
    GatewayConfig.ListenAddress listen = services.config().listen();
    // The failure names the address and the key it came from: Netty's own says neither ("bind(..)
    // failed: Address already in use", "Query failed with NXDOMAIN").
    return server.listen(port, listen.host()).recover(e -> Future.failedFuture(new IOException(
        "listen: cannot listen on " + listen.host() + ":" + listen.port() + ": " + Throwables.rootMessage(e))));
  }

  void drainTimeout(Duration drain) {
    this.drainTimeout = drain;
  }

  /** After a config reload: this loop's pool lets go of the backends that left the config. */
  void dropRetiredBackends() {
    context.runOnContext(v -> client.dropRetired());
  }

  int actualPort() {
    return server.actualPort();
  }

  /** Stops accepting, lets in-flight requests finish up to the drain timeout, then closes the pool. */
  @Override
  public Future<?> stop() {
    if (keepAlive != null) {
      keepAlive.stop();
    }
    return server.shutdown(drainTimeout.toMillis(), TimeUnit.MILLISECONDS)
        .eventually(() -> client.close());
  }

  private void handle(HttpServerRequest req) {
    if (keepAlive != null) {
      keepAlive.requestStarted(req);
    }
    Http10Framing.install(req);
    if (req.method() == HttpMethod.CONNECT) {
      // A tunnel (RFC 9110 §9.3.6); on HTTP/2 such a request has an :authority and no :path (RFC
      // 9113 §8.5), so it has no path to route by.
      req.response().putHeader(HttpHeaders.ALLOW, "GET, HEAD, POST");
      error(req, OpenAiError.METHOD_NOT_ALLOWED, "Method CONNECT is not allowed: the gateway opens no tunnels.");
      return;
    }
    String malformed = malformed(req);
    if (malformed != null) {
      error(req, OpenAiError.INVALID_REQUEST, malformed);
      return;
    }
    String path = req.path();
    switch (path) {
      case "/v1/chat/completions", "/v1/completions", "/v1/embeddings" -> {
        if (req.method() != HttpMethod.POST) {
          methodNotAllowed(req, "POST");
        } else {
          proxy(req, Route.MODEL);
        }
      }
      case "/v1/models" -> {
        if (req.method() == HttpMethod.GET) {
          models(req);
        } else {
          methodNotAllowed(req, "GET");
        }
      }
      case "/health" -> {
        if (readOnly(req)) {
          json(req, 200, Buffer.buffer("{\"status\":\"ok\"}"));
        }
      }
      case "/ready" -> {
        if (readOnly(req)) {
          ready(req);
        }
      }
      case "/generate" -> proxy(req, Route.PASSTHROUGH);
      case "/generate_stream" -> proxy(req, Route.PASSTHROUGH_STREAM);
      default -> {
        if (services.config().metrics().enabled() && path.equals(services.config().metrics().path())) {
          if (readOnly(req)) {
            metrics(req);
          }
        } else if (path.startsWith(MODEL_PATH)) {
          if (req.method() == HttpMethod.GET) {
            model(req, path.substring(MODEL_PATH.length()));
          } else {
            methodNotAllowed(req, "GET");
          }
        } else if (path.startsWith("/v1/")) {
          proxy(req, Route.PASSTHROUGH);
        } else if (path.startsWith("/admin/") && services.admin() != null) {
          services.admin().handle(req); // without admin.token, /admin/* is an unknown path
        } else {
          refused(req, System.nanoTime(), null, OpenAiError.NOT_FOUND, "Unknown path " + req.method() + " " + path + ".",
              null);
        }
      }
    }
  }

  private void proxy(HttpServerRequest req, Route route) {
    new ClientExchange(services, vertx, client, req, route).start();
  }

  /**
   * {@code /v1/models}: with auth on, the key is checked and sees only its models. Listing them uses
   * no tokens and holds no slot, so no rate limit, concurrency limit or quota applies.
   */
  private void models(HttpServerRequest req) {
    long start = System.nanoTime();
    AccessControl.Decision d = admit(req, start);
    if (!d.admitted()) {
      return;
    }
    ApiKey key = d.key();
    json(req, 200, key == null ? services.models().listJson() : services.models().listJson(key::allowsModel));
    answered(req, start, key, null, null);
  }

  /**
   * {@code /v1/models/{id}}: the model as its entry in the key's {@code /v1/models} list, or 404
   * {@code model_not_found} when the list has no such entry, as OpenAI answers. The id may hold
   * {@code /} ({@code meta-llama/Llama-3-8B}), literally or percent-encoded as the SDKs send it.
   */
  private void model(HttpServerRequest req, String rawId) {
    long start = System.nanoTime();
    AccessControl.Decision d = admit(req, start);
    if (!d.admitted()) {
      return;
    }
    ApiKey key = d.key();
    String id = percentDecoded(rawId);
    if (id == null) {
      refused(req, start, key, OpenAiError.INVALID_REQUEST,
          "The model id in the path has a '%' that is not followed by two hex digits.", "model");
      return;
    }
    Buffer model = services.models().modelJson(id, key == null ? name -> true : key::allowsModel);
    if (model == null) {
      refused(req, start, key, OpenAiError.MODEL_NOT_FOUND, "The model '" + ClientText.clip(id) + "' does not exist.",
          "model");
    } else {
      json(req, 200, model);
      answered(req, start, key, null, null);
    }
  }

  /** The key checked for an API request the gateway answers itself; a refusal is answered and logged. */
  private AccessControl.Decision admit(HttpServerRequest req, long startNanos) {
    AccessControl.Decision d = authenticate(req);
    if (!d.admitted()) {
      refused(req, startNanos, null, d.error(), d.message(), null);
    }
    return d;
  }

  /** An error answer of the gateway's own to an API request, logged and counted ({@link #answered}). */
  private void refused(HttpServerRequest req, long startNanos, ApiKey key, OpenAiError err, String message, String param) {
    error(req, err, message, param);
    answered(req, startNanos, key, err, message);
  }

  /**
   * An API request the gateway answered itself (the model list, a model, a refusal, an unknown
   * path): counted in {@code llmproxy_requests_total} and given its access-log line, as a proxied
   * request is, so a key probing {@code /v1/models} shows.
   */
  private void answered(HttpServerRequest req, long startNanos, ApiKey key, OpenAiError err, String message) {
    HttpServerResponse resp = req.response();
    long latency = System.nanoTime() - startNanos;
    services.metrics().requestCompleted(null, "none", resp.getStatusCode(), false, latency);
    AccessLog log = services.accessLog();
    if (log.enabled()) {
      log.log(new AccessLog.Entry(System.currentTimeMillis(), resp.headers().get(ForwardedHeaders.X_REQUEST_ID),
          req.method().name(), req.path(), services.access().addresses().logged(req),
          null, null, null, 0, false, resp.getStatusCode(), false, -1, latency / 1e6, -1, -1, resp.bytesWritten(),
          err == null ? null : err.code() + ": " + message, key == null ? null : key.name(), key == null ? null : key.userId()));
    }
  }

  /** The key alone, with no limit, slot or quota taken: listing models uses no tokens. */
  private AccessControl.Decision authenticate(HttpServerRequest req) {
    AccessControl access = services.access();
    return access.authenticate(req.getHeader(HttpHeaders.AUTHORIZATION), () -> access.addresses().of(req));
  }

  /**
   * A path segment with its {@code %XX} escapes decoded as UTF-8 (RFC 3986: a {@code +} is itself),
   * or null when a {@code %} is not followed by two hex digits. The target is printable ASCII here
   * ({@link #malformed}).
   */
  static String percentDecoded(String s) {
    if (s.indexOf('%') < 0) {
      return s;
    }
    byte[] out = new byte[s.length()];
    int n = 0;
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '%') {
        int hi = i + 2 < s.length() ? Character.digit(s.charAt(i + 1), 16) : -1;
        int lo = hi < 0 ? -1 : Character.digit(s.charAt(i + 2), 16);
        if (lo < 0) {
          return null;
        }
        out[n++] = (byte) (hi << 4 | lo);
        i += 2;
      } else {
        out[n++] = (byte) c;
      }
    }
    return new String(out, 0, n, StandardCharsets.UTF_8);
  }

  private void ready(HttpServerRequest req) {
    Readiness r = services.readiness();
    boolean ready = r.ready();
    String status = r.isDraining() ? "draining" : ready ? "ready" : "no_healthy_backend";
    json(req, ready ? 200 : 503,
        Buffer.buffer("{\"status\":\"" + status + "\",\"backends_up\":" + r.backendsUp() + "}"));
  }

  private void metrics(HttpServerRequest req) {
    // Scraping walks every meter: off the event loop.
    vertx.executeBlocking(() -> services.metrics().scrape(), false).onComplete(ar -> {
      if (ar.succeeded()) {
        req.response()
            .putHeader(HttpHeaders.CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
            .end(ar.result());
      } else {
        req.response().setStatusCode(500).end();
      }
    });
  }

  /**
   * A request the HTTP/1.x decoder could not read: a request line or headers over the limits, or
   * bytes that are not HTTP. Answered as Vert.x's default handler does (414, 431 or 400, then the
   * connection closes, since the rest of what the client sent cannot be framed), but with an
   * OpenAI-shaped body.
   */
  private static void invalidRequest(HttpServerRequest req) {
    Throwable cause = req.decoderResult().cause();
    OpenAiError err;
    String message;
    if (cause instanceof TooLongHttpLineException) {
      err = OpenAiError.URI_TOO_LONG;
      message = "The request line is longer than " + MAX_REQUEST_LINE + " bytes.";
    } else if (cause instanceof TooLongHttpHeaderException) {
      err = OpenAiError.HEADERS_TOO_LARGE;
      message = "The request headers are larger than " + MAX_HEADERS + " bytes.";
    } else {
      err = OpenAiError.INVALID_REQUEST;
      message = "The request is not valid HTTP.";
    }
    req.response().putHeader(HttpHeaders.CONNECTION, "close");
    json(req, err.status(), err.body(message, null)).onComplete(done -> req.connection().close());
  }

  /**
   * What makes a request that Vert.x parsed unfit to route, or null: a request target with a byte
   * outside printable ASCII (RFC 3986 has other bytes percent-encoded; passed on, they would be
   * re-encoded as UTF-8, so the backend would see another path), or an HTTP/1.1 request without
   * exactly one Host (RFC 9112 §3.2 requires a 400). A model's id under {@code /v1/models/} may
   * hold an encoded slash: that path is answered here and never forwarded.
   */
  private static String malformed(HttpServerRequest req) {
    String uri = req.uri();
    if (uri == null) {
      return "The request has no target.";
    }
    for (int i = 0, n = uri.length(); i < n; i++) {
      char c = uri.charAt(i);
      if (c <= ' ' || c >= 0x7f) {
        return "The request target has a byte that is not printable ASCII (0x" + Integer.toHexString(c)
            + "); percent-encode it.";
      }
    }
    String path = req.path();
    if (path != null && !path.startsWith(MODEL_PATH) && hasDotSegmentOrEncodedSlash(path)) {
      return "The request path has a '.' or '..' segment or an encoded slash; a backend that resolved it could "
          + "serve a path other than the one asked for.";
    }
    if (req.version() == HttpVersion.HTTP_1_1) {
      int hosts = req.headers().getAll(HttpHeaders.HOST).size();
      if (hosts != 1) {
        return hosts == 0 ? "An HTTP/1.1 request needs a Host header." : "The request has more than one Host header.";
      }
    }
    return null;
  }

  /**
   * Whether a path has a segment that is {@code .} or {@code ..} (also percent-encoded), or an encoded
   * {@code /} or {@code \}. None of the gateway's routes needs one, and passed through, {@code
   * /v1/../admin} would reach a backend that normalises paths as {@code /admin} (Envoy and nginx
   * normalise or refuse such paths too).
   */
  static boolean hasDotSegmentOrEncodedSlash(String path) {
    if (path.indexOf('.') < 0 && path.indexOf('%') < 0) {
      return false; // the usual path, such as /v1/chat/completions
    }
    int start = 0;
    int n = path.length();
    for (int i = 0; i <= n; i++) {
      if (i == n || path.charAt(i) == '/') {
        if (onlyDots(path, start, i)) {
          return true;
        }
        start = i + 1;
      } else if (path.charAt(i) == '%' && i + 2 < n && (path.charAt(i + 1) == '2' && (path.charAt(i + 2) | 0x20) == 'f'
          || path.charAt(i + 1) == '5' && (path.charAt(i + 2) | 0x20) == 'c')) {
        return true;
      }
    }
    return false;
  }

  /** {@code .} or {@code ..}, each dot possibly written {@code %2e}. */
  private static boolean onlyDots(String path, int from, int to) {
    int dots = 0;
    for (int i = from; i < to; dots++) {
      if (path.charAt(i) == '.') {
        i++;
      } else if (path.charAt(i) == '%' && i + 2 < to && path.charAt(i + 1) == '2' && (path.charAt(i + 2) | 0x20) == 'e') {
        i += 3;
      } else {
        return false;
      }
    }
    return dots == 1 || dots == 2;
  }

  /** The operations endpoints answer GET and HEAD; anything else gets 405 here, and false. */
  private static boolean readOnly(HttpServerRequest req) {
    HttpMethod m = req.method();
    if (m == HttpMethod.GET || m == HttpMethod.HEAD) {
      return true;
    }
    methodNotAllowed(req, "GET, HEAD");
    return false;
  }

  private static void methodNotAllowed(HttpServerRequest req, String allowed) {
    req.response().putHeader(HttpHeaders.ALLOW, allowed);
    error(req, OpenAiError.METHOD_NOT_ALLOWED, "Method " + req.method() + " is not allowed on " + req.path() + ".");
  }

  private static void error(HttpServerRequest req, OpenAiError err, String message) {
    error(req, err, message, null);
  }

  private static void error(HttpServerRequest req, OpenAiError err, String message, String param) {
    json(req, err.status(), err.body(message, param));
  }

  /** A JSON answer of the gateway's own, with its {@code x-request-id} (the client's, or a new one). */
  private static Future<Void> json(HttpServerRequest req, int status, Buffer body) {
    HttpServerResponse resp = req.response();
    if (!resp.headers().contains(ForwardedHeaders.X_REQUEST_ID)) {
      resp.putHeader(ForwardedHeaders.X_REQUEST_ID, RequestIds.fromClientOrNew(req.getHeader(ForwardedHeaders.X_REQUEST_ID)));
    }
    return resp.setStatusCode(status).putHeader(HttpHeaders.CONTENT_TYPE, "application/json").end(body);
  }
}
