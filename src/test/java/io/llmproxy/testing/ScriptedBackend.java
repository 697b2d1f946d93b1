package io.llmproxy.testing;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerResponse;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A backend that answers every request with an exact script of byte chunks and pauses, for tests
 * that compare bytes: what it wrote is known to the byte, unlike a realistic simulator's output.
 */
public final class ScriptedBackend implements AutoCloseable {
  /** One write after a pause. */
  public record Step(long delayMs, Buffer bytes) {}

  private final HttpServer server;
  public final List<Buffer> receivedBodies = new CopyOnWriteArrayList<>();

  private ScriptedBackend(HttpServer server) {
    this.server = server;
  }

  public static ScriptedBackend start(Vertx vertx, String contentType, List<Step> script) {
    HttpServer server = vertx.createHttpServer();
    ScriptedBackend backend = new ScriptedBackend(server);
    server.requestHandler(req -> req.body().onSuccess(body -> {
      if (req.method() != io.vertx.core.http.HttpMethod.POST) {
        req.response().setStatusCode(404).end();
        return;
      }
      backend.receivedBodies.add(body);
      HttpServerResponse resp = req.response().setChunked(true).putHeader("content-type", contentType);
      play(vertx, resp, script, 0);
    }));
    TestGateway.await(server.listen(0, "127.0.0.1"));
    return backend;
  }

  private static void play(Vertx vertx, HttpServerResponse resp, List<Step> script, int i) {
    if (i == script.size()) {
      resp.end();
      return;
    }
    Step s = script.get(i);
    Runnable write = () -> {
      resp.write(s.bytes());
      play(vertx, resp, script, i + 1);
    };
    if (s.delayMs() <= 0) {
      write.run();
    } else {
      vertx.setTimer(s.delayMs(), id -> write.run());
    }
  }

  public String url() {
    return "http://127.0.0.1:" + server.actualPort();
  }

  @Override
  public void close() {
    TestGateway.await(server.close());
  }
}
