package io.llmproxy.testing;

import static io.llmproxy.testing.TestGateway.await;

import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Blocking helpers over a Vert.x client, for tests. Every request is made on one Vert.x context, so
 * that each handler is set before the event loop can deliver what it handles. Chained from the test
 * thread, {@code send().compose(resp -> resp.body())} runs its callback later, as a task on the
 * context, when the response came before the chaining; if the response has ended by then,
 * {@code body()} never completes. Under load that hung about one request in 300: use this client, not
 * one of your own.
 */
public final class TestClient {
  private final HttpClientAgent http;
  private final Context context;

  public TestClient(HttpClientAgent http, Context context) {
    this.http = http;
    this.context = context;
  }

  /** A client of the HTTP server at {@code host}:{@code port}, keeping its connections alive. */
  public static TestClient to(Vertx vertx, String host, int port) {
    return new TestClient(vertx.createHttpClient(new HttpClientOptions().setDefaultHost(host)
        .setDefaultPort(port).setKeepAlive(true), new PoolOptions().setHttp1MaxSize(256)), vertx.getOrCreateContext());
  }

  /** Runs {@code op} on the client's context. */
  private <T> Future<T> onContext(Supplier<Future<T>> op) {
    Promise<T> done = Promise.promise();
    context.runOnContext(v -> {
      try {
        op.get().onComplete(done);
      } catch (RuntimeException e) {
        done.fail(e);
      }
    });
    return done.future();
  }

  /** A complete response. */
  public record Response(int status, String statusMessage, MultiMap headers, Buffer body) {
    /** {@code resp} with its {@code body}. */
    public static Response of(HttpClientResponse resp, Buffer body) {
      return new Response(resp.statusCode(), resp.statusMessage(), resp.headers(), body);
    }

    public String text() {
      return body.toString(StandardCharsets.UTF_8);
    }

    public JsonObject json() {
      return body.toJsonObject();
    }

    public String header(String name) {
      return headers.get(name);
    }
  }

  /** One chunk as the client received it, with when. */
  public record Chunk(long atNanos, Buffer data) {}

  /** A response read chunk by chunk. */
  public record Streamed(int status, MultiMap headers, List<Chunk> chunks) {
    public Buffer body() {
      Buffer b = Buffer.buffer();
      chunks.forEach(c -> b.appendBuffer(c.data()));
      return b;
    }

    public String text() {
      return body().toString(StandardCharsets.UTF_8);
    }

    /** The generated text of an OpenAI stream: its {@code delta.content} or {@code text} pieces, joined. */
    public String content() {
      StringBuilder b = new StringBuilder();
      for (Event e : events()) {
        if (!e.data().startsWith("{")) {
          continue;
        }
        io.vertx.core.json.JsonArray choices = new JsonObject(e.data()).getJsonArray("choices");
        if (choices == null || choices.isEmpty()) {
          continue;
        }
        JsonObject choice = choices.getJsonObject(0);
        JsonObject delta = choice.getJsonObject("delta");
        String piece = delta != null ? delta.getString("content") : choice.getString("text");
        if (piece != null) {
          b.append(piece);
        }
      }
      return b.toString();
    }

    /** SSE events ("data: ..." payloads) with the arrival time of the chunk that completed each. */
    public List<Event> events() {
      List<Event> events = new ArrayList<>();
      StringBuilder pending = new StringBuilder();
      for (Chunk c : chunks) {
        pending.append(c.data().toString(StandardCharsets.UTF_8));
        int end;
        while ((end = pending.indexOf("\n\n")) >= 0) {
          String block = pending.substring(0, end);
          pending.delete(0, end + 2);
          for (String line : block.split("\n")) {
            if (line.startsWith("data:")) {
              events.add(new Event(c.atNanos(), line.substring(5).trim()));
            }
          }
        }
      }
      return events;
    }

    /**
     * The indexes of the events that reached the client only after the upstream had written the
     * event that follows them, when the upstream wrote the two at least {@code apart} from each
     * other (events written back to back, as a role chunk and the first token, or the usage chunk
     * and {@code [DONE]}, may share a packet). A proxy that holds bytes back to batch them shows
     * some; one that passes each write on as it arrives shows none, however the machine's pauses
     * shift the gaps between events. {@code sentAtNanos} is when the upstream wrote each event, as
     * the simulator's {@link io.llmproxy.sim.RequestRecord#chunkSentAtNanos()} records it.
     */
    public List<Integer> heldBack(long[] sentAtNanos, Duration apart) {
      List<Event> events = events();
      if (events.size() != sentAtNanos.length) {
        throw new AssertionError(events.size() + " events arrived, " + sentAtNanos.length + " were sent");
      }
      List<Integer> held = new ArrayList<>();
      int checked = 0;
      for (int i = 0; i + 1 < events.size(); i++) {
        if (sentAtNanos[i + 1] - sentAtNanos[i] >= apart.toNanos()) {
          checked++;
          if (events.get(i).atNanos() >= sentAtNanos[i + 1]) {
            held.add(i);
          }
        }
      }
      if (checked == 0) {
        throw new AssertionError("no two events were written " + apart + " apart: nothing to check");
      }
      return held;
    }
  }

  /** One SSE data payload. */
  public record Event(long atNanos, String data) {
    public boolean isContent() {
      return data.contains("\"content\":\"") && !data.contains("\"content\":\"\"");
    }
  }

  public Response post(String path, String json, String... headerPairs) {
    return send(HttpMethod.POST, path, Buffer.buffer(json), headerPairs);
  }

  public Response get(String path, String... headerPairs) {
    return send(HttpMethod.GET, path, null, headerPairs);
  }

  public Response send(HttpMethod method, String path, Buffer body, String... headerPairs) {
    return await(sendAsync(method, path, body, headerPairs));
  }

  public Future<Response> sendAsync(HttpMethod method, String path, Buffer body, String... headerPairs) {
    RequestOptions o = options(method, path, body != null, headerPairs);
    // The body is asked for inside the send callback: chained later, it could miss the response's end.
    return onContext(() -> http.request(o).compose(req -> (body == null ? req.send() : req.send(body))
        .compose(resp -> resp.body().map(b -> Response.of(resp, b)))));
  }

  public Streamed stream(String path, String json, String... headerPairs) {
    return await(streamAsync(path, json, headerPairs));
  }

  public Future<Streamed> streamAsync(String path, String json, String... headerPairs) {
    return onContext(() -> {
      Promise<Streamed> done = Promise.promise();
      http.request(options(HttpMethod.POST, path, true, headerPairs)).onFailure(done::fail).onSuccess(req ->
          req.send(Buffer.buffer(json)).onFailure(done::fail).onSuccess(resp -> {
            List<Chunk> chunks = new ArrayList<>();
            resp.handler(b -> chunks.add(new Chunk(System.nanoTime(), b)));
            resp.exceptionHandler(done::tryFail);
            resp.endHandler(v -> done.tryComplete(new Streamed(resp.statusCode(), resp.headers(), chunks)));
          }));
      return done.future();
    });
  }

  /** Sends a request and hands back the request object so a test can cut the connection. */
  public HttpClientRequest open(String path, String json, String... headerPairs) {
    return await(onContext(() -> http.request(options(HttpMethod.POST, path, true, headerPairs)).map(req -> {
      req.send(Buffer.buffer(json)).onSuccess(resp -> resp.handler(b -> { }));
      return req;
    })));
  }

  /** A stream being read: what arrived so far, and the request, to cut it. */
  public static final class OpenStream {
    private final HttpClientRequest request;
    private final Buffer received = Buffer.buffer();
    private volatile int status;

    OpenStream(HttpClientRequest request) {
      this.request = request;
    }

    public HttpClientRequest request() {
      return request;
    }

    public int status() {
      return status;
    }

    /** The bytes received so far. */
    public synchronized String text() {
      return received.toString(StandardCharsets.UTF_8);
    }

    private synchronized void append(Buffer b) {
      received.appendBuffer(b);
    }
  }

  /** Sends a request and reads its response as it comes, until the test cuts it or it ends. */
  public OpenStream openStream(String path, String json, String... headerPairs) {
    return await(onContext(() -> http.request(options(HttpMethod.POST, path, true, headerPairs)).map(req -> {
      OpenStream open = new OpenStream(req);
      req.send(Buffer.buffer(json)).onSuccess(resp -> {
        open.status = resp.statusCode();
        resp.handler(open::append);
      });
      return open;
    })));
  }

  private static RequestOptions options(HttpMethod method, String path, boolean json, String... headerPairs) {
    RequestOptions o = new RequestOptions().setMethod(method).setURI(path);
    if (json) {
      o.putHeader(HttpHeaders.CONTENT_TYPE, "application/json");
    }
    for (int i = 0; i + 1 < headerPairs.length; i += 2) {
      o.putHeader(headerPairs[i], headerPairs[i + 1]);
    }
    return o;
  }

  public static String chat(String model, boolean stream) {
    return "{\"model\":\"" + model + "\",\"stream\":" + stream
        + ",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}";
  }
}
