package io.llmproxy.proxy;

import io.llmproxy.config.GatewayConfig;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;

/**
 * The keep-alive HTTP/1.1 pool to the backends for one event loop. Each event loop has its own, so
 * the upstream connection lives on the same thread as the client connection and a forwarded chunk
 * never changes thread. Pool sizes come from {@code upstream}: the per-backend cap is split across
 * the event loops.
 */
public final class UpstreamClient {
  private final HttpClientAgent http;

  public UpstreamClient(Vertx vertx, GatewayConfig config, int eventLoops) {
    GatewayConfig.UpstreamConfig up = config.upstream();
    int perLoop = Math.max(1, (up.maxConnectionsPerBackend() + eventLoops - 1) / eventLoops);
    HttpClientOptions options = new HttpClientOptions()
        .setProtocolVersion(HttpVersion.HTTP_1_1)
        .setKeepAlive(true)
        .setKeepAliveTimeout((int) Math.max(1, up.keepAliveTimeout().toSeconds()))
        .setPipelining(false)
        .setTcpNoDelay(true)
        .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, config.routing().timeouts().connect().toMillis()))
        .setDecompressionSupported(false)
        .setMaxInitialLineLength(64 * 1024)
        .setMaxHeaderSize(64 * 1024)
        .setVerifyHost(true)
        .setShared(false)
        .setName("llmproxy-upstream");
    PoolOptions pool = new PoolOptions()
        .setHttp1MaxSize(perLoop)
        .setMaxWaitQueueSize(up.maxWaitQueue())
        .setEventLoopSize(0); // the caller's event loop
    this.http = vertx.createHttpClient(options, pool);
  }

  /** Obtains a request on a pooled (or new) connection; fails on connect error or connect timeout. */
  public Future<HttpClientRequest> request(RequestOptions options) {
    return http.request(options);
  }

  public Future<Void> close() {
    return http.close();
  }
}
