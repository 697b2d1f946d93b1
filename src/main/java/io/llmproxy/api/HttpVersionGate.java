package io.llmproxy.api;

import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.impl.ConnectionBase;
import java.nio.charset.StandardCharsets;

/**
 * The HTTP version of each request on an HTTP/1.x client connection, checked before Vert.x sees
 * it. Vert.x answers a version it does not know with an empty 501 that repeats the client's version
 * in its status line; here instead:
 *
 * <ul>
 *   <li>a higher minor version of HTTP/1 ({@code HTTP/1.2}) is served as HTTP/1.1, as RFC 9112 §2.3
 *       asks of a recipient;
 *   <li>another major version of HTTP ({@code HTTP/2.0} or {@code HTTP/0.9} in a request line) gets
 *       505 and another protocol name ({@code FOO/1.1}) 400, each with an OpenAI-shaped body, in an
 *       HTTP/1.1 response, and the connection closes: what follows cannot be framed.
 * </ul>
 *
 * It sits in the pipeline just before Vert.x's connection handler, after the HTTP decoder, for the
 * connection's life: one type test per decoded message.
 */
public final class HttpVersionGate extends ChannelInboundHandlerAdapter {
  /** The handler's name in the pipeline. */
  public static final String NAME = "llmproxy-http-version";

  /** Whether a request was refused: everything the client sends after it is dropped. */
  private boolean refused;

  private HttpVersionGate() {}

  /** Puts a gate on {@code connection} when it is an HTTP/1.x connection of Vert.x's; for {@code HttpServer.connectionHandler}. */
  public static void install(HttpConnection connection) {
    ConnectionBase base = http1(connection);
    if (base != null) {
      ChannelHandlerContext vertx = base.channelHandlerContext();
      vertx.pipeline().addBefore(vertx.name(), NAME, new HttpVersionGate());
    }
  }

  /** {@code connection} when it is an HTTP/1.x connection of Vert.x's (its pipeline has the HTTP/1 decoder); else null. */
  static ConnectionBase http1(HttpConnection connection) {
    return connection instanceof ConnectionBase base && base.channel().pipeline().get("httpDecoder") != null
        ? base : null;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (refused) {
      ReferenceCountUtil.release(msg);
      return;
    }
    if (msg instanceof HttpRequest req) {
      HttpVersion v = req.protocolVersion();
      if (v != HttpVersion.HTTP_1_1 && v != HttpVersion.HTTP_1_0) {
        if (v.protocolName().equals("HTTP") && v.majorVersion() == 1) {
          req.setProtocolVersion(HttpVersion.HTTP_1_1);
        } else {
          refuse(ctx, msg, v);
          return;
        }
      }
    }
    ctx.fireChannelRead(msg);
  }

  private void refuse(ChannelHandlerContext ctx, Object msg, HttpVersion v) {
    refused = true;
    ReferenceCountUtil.release(msg);
    boolean http = v.protocolName().equals("HTTP");
    OpenAiError err = http ? OpenAiError.HTTP_VERSION_NOT_SUPPORTED : OpenAiError.INVALID_REQUEST;
    String message = http
        ? v.text() + " is not served here: send HTTP/1.1, or HTTP/2 (prior knowledge or Upgrade: h2c)."
        : "The request is not valid HTTP.";
    byte[] body = err.json(message, null).getBytes(StandardCharsets.UTF_8);
    FullHttpResponse res = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(err.status()),
        Unpooled.wrappedBuffer(body));
    res.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_JSON)
        .setInt(HttpHeaderNames.CONTENT_LENGTH, body.length)
        .set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
    ctx.writeAndFlush(res).addListener(ChannelFutureListener.CLOSE);
  }
}
