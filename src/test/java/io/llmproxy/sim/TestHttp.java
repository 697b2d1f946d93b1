package io.llmproxy.sim;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** A Vert.x HTTP client for the simulator tests: whole replies, and streams read as they come. */
final class TestHttp implements AutoCloseable {

  record Reply(int status, MultiMap headers, String body) {}

  /** A response read as it arrives; all fields are filled on the client's event loop. */
  static final class Streamed {
    final CompletableFuture<HttpClientResponse> head = new CompletableFuture<>();
    final CompletableFuture<Void> end = new CompletableFuture<>();
    final StringBuffer body = new StringBuffer();
    volatile HttpClientRequest request;
    volatile long headAtNanos;
    volatile long firstBodyAtNanos;

    /** Complete SSE events received so far. */
    int events() {
      String s = body.toString();
      int count = 0;
      for (int i = s.indexOf("\n\n"); i >= 0; i = s.indexOf("\n\n", i + 2)) {
        count++;
      }
      return count;
    }

    /** Closes the TCP connection under this request. */
    long closeConnection() {
      long now = System.nanoTime();
      request.connection().close();
      return now;
    }
  }

  private final HttpClientAgent client;
  /**
   * Every request is made on this one context: made from the test thread, each request would get
   * a context of its own, and a response could end before its handlers were set (about one request
   * in 300 then never completed).
   */
  private final Context context;

  TestHttp(Vertx vertx) {
    this(vertx, 1);
  }

  /** A client that keeps at most {@code connections} connections, kept alive. */
  TestHttp(Vertx vertx, int connections) {
    this(vertx, new HttpClientOptions().setKeepAlive(true),
        new PoolOptions().setHttp1MaxSize(connections));
  }

  TestHttp(Vertx vertx, HttpClientOptions options, PoolOptions pool) {
    this.client = vertx.createHttpClient(options, pool);
    this.context = vertx.getOrCreateContext();
  }

  private <T> Future<T> onContext(java.util.function.Supplier<Future<T>> op) {
    Promise<T> done = Promise.promise();
    context.runOnContext(v -> op.get().onComplete(done));
    return done.future();
  }

  /** An HTTP/2 client over cleartext, with prior knowledge. */
  static TestHttp http2(Vertx vertx) {
    return new TestHttp(vertx, new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
        .setHttp2ClearTextUpgrade(false), new PoolOptions());
  }

  Reply get(String url) {
    return send(HttpMethod.GET, url, null);
  }

  Reply post(String url, String body) {
    return send(HttpMethod.POST, url, body);
  }

  Reply send(HttpMethod method, String url, String body) {
    // The body must be asked for inside the callback that sends: chained on the outside instead,
    // it may be asked for (from this thread) after the response has ended, and never come.
    Future<Reply> reply = onContext(() -> client
        .request(new RequestOptions().setMethod(method).setAbsoluteURI(url))
        .compose(req -> (body == null ? req.send() : req.send(body))
            .compose(resp -> resp.body().map(b -> new Reply(resp.statusCode(), resp.headers(),
                b.toString())))));
    try {
      return reply.await(10, TimeUnit.SECONDS);
    } catch (java.util.concurrent.TimeoutException e) {
      throw new AssertionError("no reply from " + url, e);
    }
  }

  /** Starts a POST and reads its response as it arrives. */
  Streamed stream(String url, String body) {
    Streamed s = new Streamed();
    context.runOnContext(ignored -> client.request(new RequestOptions().setMethod(HttpMethod.POST).setAbsoluteURI(url))
        .compose(req -> {
          s.request = req;
          return req.send(body).onSuccess(resp -> {
            s.headAtNanos = System.nanoTime();
            resp.handler(chunk -> {
              if (s.firstBodyAtNanos == 0) {
                s.firstBodyAtNanos = System.nanoTime();
              }
              s.body.append(chunk.toString());
            });
            resp.endHandler(v -> s.end.complete(null));
            resp.exceptionHandler(s.end::completeExceptionally);
            s.head.complete(resp);
          });
        })
        .onFailure(err -> {
          s.head.completeExceptionally(err);
          s.end.completeExceptionally(err);
        }));
    return s;
  }

  static Buffer json(String s) {
    return Buffer.buffer(s);
  }

  @Override
  public void close() {
    client.close().await();
  }
}
