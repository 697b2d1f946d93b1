package io.llmproxy.admin;

import static io.llmproxy.admin.AdminError.notFound;

import com.fasterxml.jackson.databind.JsonNode;
import io.llmproxy.api.DeclaredLength;
import io.llmproxy.api.LingeringClose;
import io.llmproxy.api.OpenAiError;
import io.llmproxy.auth.AccessControl;
import io.llmproxy.auth.ApiKey;
import io.llmproxy.auth.KeyHash;
import io.llmproxy.auth.KeyRegistry;
import io.llmproxy.config.ConfigException;
import io.llmproxy.store.Store;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.WorkerExecutor;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin API's requests: the whole body is read (up to {@value #MAX_BODY_BYTES} bytes) before
 * anything is answered, so every answer leaves the connection usable; then the admin token is
 * checked, and the path and method pick the endpoint. What only reads memory is answered on the
 * event loop. Key changes, which commit the store, and usage reports, which scan it, run on a worker
 * of their own, one at a time: a PATCH reads and replaces its key with no other change in between.
 */
final class AdminHandler implements AdminApi {
  private static final Logger LOG = LoggerFactory.getLogger(AdminHandler.class);

  static final int MAX_BODY_BYTES = 64 * 1024;
  /** How long the rest of a refused upload is read and dropped before the connection closes. */
  private static final long LINGER_MS = 1000;
  private static final String KEYS = "/admin/api-keys";
  private static final String KEY_PREFIX = KEYS + "/";

  private final Vertx vertx;
  /** SHA-256 of the admin token: a presented token is hashed too, and the hashes compared in constant time. */
  private final byte[] tokenHash;
  private final AccessControl access;
  private final Store store;
  private final BackendsView backends;
  private final Reloader reloader;
  private final Clock clock;
  private final WorkerExecutor worker;

  AdminHandler(Vertx vertx, String token, AccessControl access, Store store, BackendsView backends,
      Reloader reloader, Clock clock) {
    this.vertx = vertx;
    this.tokenHash = KeyHash.sha256(token);
    this.access = access;
    this.store = store;
    this.backends = backends;
    this.reloader = reloader;
    this.clock = clock;
    this.worker = vertx.createSharedWorkerExecutor("llmproxy-admin", 1);
  }

  @Override
  public void handle(HttpServerRequest req) {
    long declared = DeclaredLength.of(req);
    if (declared == DeclaredLength.INVALID) {
      rejectAndClose(req, AdminError.badRequest("Content-Length is not a number.", null));
      return;
    }
    if (declared > MAX_BODY_BYTES) {
      rejectAndClose(req, tooLarge());
      return;
    }
    if ("100-continue".equalsIgnoreCase(req.getHeader(HttpHeaders.EXPECT))) {
      AdminError denied = checkToken(req);
      if (denied != null) {
        rejectAndClose(req, denied);
        return;
      }
      req.response().writeContinue();
    }
    Buffer body = Buffer.buffer();
    boolean[] refused = {false};
    req.handler(chunk -> {
      if (refused[0]) {
        return;
      }
      if (body.length() + (long) chunk.length() > MAX_BODY_BYTES) {
        refused[0] = true;
        rejectAndClose(req, tooLarge());
        return;
      }
      body.appendBuffer(chunk);
    });
    req.exceptionHandler(t -> { }); // the client went away: nothing to answer
    req.endHandler(v -> {
      if (!refused[0]) {
        serve(req, body);
      }
    });
  }

  private static AdminError tooLarge() {
    return new AdminError(OpenAiError.REQUEST_TOO_LARGE, "An admin request body may be at most " + MAX_BODY_BYTES
        + " bytes.", null);
  }

  /** Null when the request carries the admin token. */
  private AdminError checkToken(HttpServerRequest req) {
    String presented = AccessControl.bearer(req.getHeader(HttpHeaders.AUTHORIZATION));
    if (presented == null) {
      return new AdminError(OpenAiError.INVALID_ADMIN_TOKEN, "The admin API needs the admin token in an "
          + "Authorization header: Bearer <admin.token>.", null);
    }
    if (!MessageDigest.isEqual(KeyHash.sha256(presented), tokenHash)) {
      return new AdminError(OpenAiError.INVALID_ADMIN_TOKEN, "Incorrect admin token provided.", null);
    }
    return null;
  }

  private void serve(HttpServerRequest req, Buffer body) {
    try {
      AdminError denied = checkToken(req);
      if (denied != null) {
        throw denied;
      }
      route(req, body);
    } catch (AdminError e) {
      fail(req, e);
    } catch (RuntimeException e) {
      LOG.error("admin request {} {} failed", req.method(), req.path(), e);
      fail(req, new AdminError(OpenAiError.INTERNAL_ERROR, "The admin request failed inside the gateway.", null));
    }
  }

  private void route(HttpServerRequest req, Buffer body) {
    String path = req.path();
    if (path.length() > "/admin/".length() && path.endsWith("/")) {
      path = path.substring(0, path.length() - 1);
    }
    HttpMethod m = req.method();
    switch (path) {
      case KEYS -> {
        if (m == HttpMethod.GET) {
          list(req);
        } else if (m == HttpMethod.POST) {
          create(req, body);
        } else {
          throw methodNotAllowed(req, "GET, POST");
        }
      }
      case "/admin/usage" -> {
        if (m != HttpMethod.GET) {
          throw methodNotAllowed(req, "GET");
        }
        usage(req);
      }
      case "/admin/backends" -> {
        if (m != HttpMethod.GET) {
          throw methodNotAllowed(req, "GET");
        }
        reply(req, 200, backends.render());
      }
      case "/admin/reload" -> {
        if (m != HttpMethod.POST) {
          throw methodNotAllowed(req, "POST");
        }
        reload(req);
      }
      default -> {
        if (!path.startsWith(KEY_PREFIX) || path.indexOf('/', KEY_PREFIX.length()) >= 0) {
          throw notFound("Unknown admin path " + m + " " + req.path() + ".");
        }
        String id = path.substring(KEY_PREFIX.length());
        if (m == HttpMethod.GET) {
          get(req, id);
        } else if (m == HttpMethod.PATCH) {
          patch(req, id, body);
        } else if (m == HttpMethod.DELETE) {
          delete(req, id);
        } else {
          throw methodNotAllowed(req, "GET, PATCH, DELETE");
        }
      }
    }
  }

  private static AdminError methodNotAllowed(HttpServerRequest req, String allowed) {
    req.response().putHeader(HttpHeaders.ALLOW, allowed);
    return new AdminError(OpenAiError.METHOD_NOT_ALLOWED, "Method " + req.method() + " is not allowed on "
        + req.path() + "; use " + allowed + ".", null);
  }

  // ---- keys

  private KeyRegistry keys() {
    KeyRegistry keys = access.keys();
    if (keys == null) {
      throw notFound("The key endpoints need auth.enabled: true; authentication is off, so there are no API keys.");
    }
    return keys;
  }

  private JsonObject view(ApiKey key) {
    return KeyView.of(key, access.quotas(), access.limits());
  }

  private static AdminError noSuchKey(String id) {
    return notFound("No API key with id '" + id + "'.");
  }

  private void list(HttpServerRequest req) {
    JsonArray data = new JsonArray();
    for (ApiKey k : keys().list()) {
      data.add(view(k));
    }
    reply(req, 200, new JsonObject().put("object", "list").put("data", data));
  }

  private void get(HttpServerRequest req, String id) {
    ApiKey key = keys().get(id);
    if (key == null) {
      throw noSuchKey(id);
    }
    reply(req, 200, view(key));
  }

  private void create(HttpServerRequest req, Buffer body) {
    KeyRegistry keys = keys();
    KeyFields.Create c = KeyFields.forCreate(KeyFields.object(body));
    blocking(req, () -> keys.create(c.draft(), c.secret()), OpenAiError.KEY_EXISTS).onSuccess(created -> {
      req.response().putHeader(HttpHeaders.LOCATION, KEY_PREFIX + created.key().id());
      reply(req, 201, view(created.key()).put("key", created.secret()));
    });
  }

  private void patch(HttpServerRequest req, String id, Buffer body) {
    KeyRegistry keys = keys();
    JsonNode fields = KeyFields.object(body);
    blocking(req, () -> {
      ApiKey current = keys.get(id);
      if (current == null) {
        throw noSuchKey(id);
      }
      ApiKey updated = keys.update(id, KeyFields.forPatch(current.stored(), fields));
      if (updated == null) {
        throw noSuchKey(id);
      }
      return updated;
    }, OpenAiError.KEY_IN_CONFIG).onSuccess(updated -> reply(req, 200, view(updated)));
  }

  private void delete(HttpServerRequest req, String id) {
    keys(); // 404 without auth
    blocking(req, () -> {
      if (!access.revoke(id)) {
        throw noSuchKey(id);
      }
      return id;
    }, OpenAiError.KEY_IN_CONFIG).onSuccess(deleted -> reply(req, 200,
        new JsonObject().put("id", deleted).put("object", "api_key").put("deleted", true)));
  }

  // ---- reload

  /**
   * Reads the config file again and applies it, on the admin worker (so never beside a key change).
   * 200 with what changed and what waits for a restart; 400 {@code invalid_config} naming each
   * problem, with nothing changed; 409 {@code reload_unavailable} with no file to read.
   */
  private void reload(HttpServerRequest req) {
    blocking(req, () -> {
      try {
        return reloader.reload();
      } catch (ConfigException e) {
        throw new AdminError(OpenAiError.INVALID_CONFIG, "The config file has " + e.problems().size()
            + (e.problems().size() == 1 ? " problem" : " problems") + "; the running config is unchanged: "
            + String.join("; ", e.problems()), null);
      } catch (IllegalStateException e) {
        throw new AdminError(OpenAiError.RELOAD_UNAVAILABLE, e.getMessage(), null);
      }
    }, null).onSuccess(r -> reply(req, 200, new JsonObject()
        .put("object", "config_reload")
        .put("changed", r.changed())
        .put("applied", new JsonArray(r.applied()))
        .put("restart_required", new JsonArray(r.needRestart()))));
  }

  // ---- usage

  private void usage(HttpServerRequest req) {
    if (store == null) {
      throw notFound("Usage totals are kept only with auth.enabled or usage_hook.enabled; this gateway keeps none.");
    }
    MultiMap params;
    try {
      params = req.params();
    } catch (IllegalArgumentException e) {
      throw AdminError.badRequest("The query string is not valid: " + e.getMessage(), null);
    }
    UsageReport.Query q = UsageReport.query(params, LocalDate.ofInstant(clock.instant(), ZoneOffset.UTC));
    KeyRegistry keys = access.keys();
    blocking(req, () -> UsageReport.render(q, store.usage(q.keyId(), q.from(), q.to()), keys), null)
        .onSuccess(report -> reply(req, 200, report));
  }

  // ---- answers

  /**
   * Runs {@code work} on the admin worker; back on the request's event loop, its failure is answered
   * (a {@link KeyRegistry.Conflict} as {@code conflict}) and only a success reaches the returned future.
   */
  private <T> Future<T> blocking(HttpServerRequest req, Callable<T> work, OpenAiError conflict) {
    return worker.executeBlocking(work, false).onFailure(t -> {
      if (t instanceof AdminError e) {
        fail(req, e);
      } else if (t instanceof KeyRegistry.Conflict && conflict != null) {
        fail(req, new AdminError(conflict, t.getMessage(), null));
      } else {
        LOG.error("admin request {} {} failed", req.method(), req.path(), t);
        fail(req, new AdminError(OpenAiError.INTERNAL_ERROR, "The admin request failed inside the gateway.", null));
      }
    });
  }

  private static void reply(HttpServerRequest req, int status, JsonObject body) {
    headers(req.response().setStatusCode(status)).end(body.toBuffer());
  }

  private static void fail(HttpServerRequest req, AdminError e) {
    HttpServerResponse resp = req.response();
    if (e.error() == OpenAiError.INVALID_ADMIN_TOKEN) {
      resp.putHeader("www-authenticate", "Bearer");
    }
    headers(resp.setStatusCode(e.error().status())).end(e.error().body(e.getMessage(), e.param()));
  }

  /** Every answer is JSON, and none is cached: one of them carries a new key's secret. */
  private static HttpServerResponse headers(HttpServerResponse resp) {
    return resp.putHeader(HttpHeaders.CONTENT_TYPE, "application/json").putHeader(HttpHeaders.CACHE_CONTROL, "no-store");
  }

  /**
   * Answers before the body was read, then closes the connection, whose unread rest would make it
   * unusable (on HTTP/2 only the stream ends), lingering while the client is still sending so that
   * it reads the answer rather than a reset ({@link LingeringClose}).
   */
  private void rejectAndClose(HttpServerRequest req, AdminError e) {
    LingeringClose.answer(vertx, req, LINGER_MS, () -> fail(req, e));
  }
}
