import io.llmproxy.api.PerEventLoop;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientConnection;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpConnectOptions;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.transport.Transport;
import java.util.ArrayDeque;

/**
 * The floor of a forwarder on Vert.x 5's HTTP server and client (the ones in llmproxy's jar), on
 * io_uring where the kernel has it, as llmproxy's {@code transport: auto}, else epoll
 * ({@code -Dfloor.transport=epoll} asks for epoll): one server on each event loop, each with its
 * own pool of upstream connections (a stack, as llmproxy's), the request body read whole, the
 * response streamed back (with the backend's Content-Length, or chunked without one). No routing,
 * no error handling, no metrics, no log: a measuring stick for bench/floor.sh, not a proxy.
 *
 *   java -cp target/llmproxy.jar bench/floor/VertxForwarder.java LISTEN_PORT BACKEND_PORT
 */
public class VertxForwarder extends VerticleBase {
  private final int port;
  private final int backendPort;
  private final ArrayDeque<HttpClientConnection> idle = new ArrayDeque<>();
  private HttpClientAgent connector;

  VertxForwarder(int port, int backendPort) {
    this.port = port;
    this.backendPort = backendPort;
  }

  public static void main(String[] args) {
    int port = Integer.parseInt(args[0]);
    int backendPort = Integer.parseInt(args[1]);
    int loops = Runtime.getRuntime().availableProcessors();
    boolean uring = Transport.IO_URING.available() && !"epoll".equals(System.getProperty("floor.transport"));
    Transport transport = uring ? Transport.IO_URING : Transport.EPOLL;
    Vertx vertx = Vertx.builder().with(new VertxOptions().setEventLoopPoolSize(loops))
        .withTransport(transport).build();
    // One instance on each loop (deployVerticle with setInstances sometimes puts two on one).
    PerEventLoop.deploy(vertx, loops, () -> new VertxForwarder(port, backendPort))
        .onSuccess(id -> System.out.println("vert.x forwarder on 127.0.0.1:" + port + " to 127.0.0.1:" + backendPort
            + " (" + transport.name() + ")"))
        .onFailure(Throwable::printStackTrace);
  }

  @Override
  public Future<?> start() {
    connector = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(true).setTcpNoDelay(true).setShared(false));
    return vertx.createHttpServer(new HttpServerOptions().setTcpNoDelay(true).setStrictThreadMode(true))
        .requestHandler(req -> req.body().onSuccess(body -> {
          HttpClientConnection pooled = idle.pollFirst();
          Future<HttpClientConnection> conn = pooled != null ? Future.succeededFuture(pooled)
              : connector.connect(new HttpConnectOptions().setHost("127.0.0.1").setPort(backendPort));
          conn.onFailure(t -> req.response().setStatusCode(502).end())
              .onSuccess(c -> c.request(new RequestOptions().setMethod(req.method()).setURI(req.uri()))
                  .onSuccess(up -> {
                    up.putHeader("content-type", req.getHeader("content-type"));
                    up.send(body).onSuccess(resp -> {
                      HttpServerResponse out = req.response().setStatusCode(resp.statusCode());
                      out.headers().addAll(resp.headers());
                      // the backend's Content-Length is kept, as nginx and llmproxy keep it
                      out.setChunked(!out.headers().contains("content-length"));
                      resp.handler(out::write);
                      resp.endHandler(v -> {
                        out.end();
                        idle.addFirst(c);
                      });
                    });
                  }));
        }))
        .listen(port, "127.0.0.1");
  }
}
