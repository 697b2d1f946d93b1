package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.impl.headers.Http2HeadersAdaptor;
import org.junit.jupiter.api.Test;

/** What crosses the proxy: client headers (Vert.x's) to the upstream request (Netty's), and back. */

class ForwardedHeadersTest {

  @Test
  void requestDropsHopByHopCredentialsAndConnectionListed() {
    MultiMap in = HttpHeaders.headers()
        .add("Host", "gw")
        .add("Connection", "keep-alive, X-Private")
        .add("X-Private", "secret")
        .add("Keep-Alive", "timeout=5")
        .add("TE", "trailers")
        .add("Transfer-Encoding", "chunked")
        .add("Upgrade", "h2c")
        .add("Proxy-Authorization", "Basic x")
        .add("Authorization", "Bearer sk-client")
        .add("Content-Length", "10")
        .add("Accept-Encoding", "gzip")
        .add("x-llmproxy-hedge", "off")
        .add("Content-Type", "application/json")
        .add("OpenAI-Organization", "org")
        .add("X-Forwarded-For", "10.0.0.1");
    io.netty.handler.codec.http.HttpHeaders out = new DefaultHttpHeaders();
    ForwardedHeaders.copyRequest(in, out, "192.0.2.7");
    assertThat(out.names()).containsExactlyInAnyOrder("Content-Type", "OpenAI-Organization", "x-forwarded-for");
    assertThat(out.get("x-forwarded-for")).isEqualTo("10.0.0.1, 192.0.2.7");
  }

  /** An HTTP/2 client's headers are not Netty's HTTP/1 headers: the same filter applies to them. */
  @Test
  void http2RequestHeadersAreFilteredTheSameWay() {
    MultiMap in = new Http2HeadersAdaptor(new DefaultHttp2Headers()
        .add("authorization", "Bearer sk-client")
        .add("x-llmproxy-hedge", "off")
        .add("te", "trailers")
        .add("content-type", "application/json")
        .add("x-custom", "kept")
        .add("x-forwarded-for", "10.0.0.1"));
    io.netty.handler.codec.http.HttpHeaders out = new DefaultHttpHeaders();
    ForwardedHeaders.copyRequest(in, out, "192.0.2.7");
    assertThat(out.names()).containsExactlyInAnyOrder("content-type", "x-custom", "x-forwarded-for");
    assertThat(out.get("x-custom")).isEqualTo("kept");
    assertThat(out.get("x-forwarded-for")).isEqualTo("10.0.0.1, 192.0.2.7");
  }

  @Test
  void responseDropsHopByHopOnly() {
    io.netty.handler.codec.http.HttpHeaders in = new DefaultHttpHeaders()
        .add("Connection", "close")
        .add("Transfer-Encoding", "chunked")
        .add("Content-Type", "text/event-stream")
        .add("Content-Length", "12")
        .add("x-ratelimit-remaining", "3");
    MultiMap out = HttpHeaders.headers();
    ForwardedHeaders.copyResponse(in, out);
    assertThat(out.names()).containsExactlyInAnyOrder("Content-Type", "Content-Length", "x-ratelimit-remaining");
  }

  @Test
  void everyConnectionLineCountsBothWays() {
    MultiMap in = HttpHeaders.headers()
        .add("Connection", "keep-alive")
        .add("Connection", "X-Second-Line,\tX-After-Tab")
        .add("X-Second-Line", "a")
        .add("X-After-Tab", "b")
        .add("Content-Type", "application/json");
    io.netty.handler.codec.http.HttpHeaders up = new DefaultHttpHeaders();
    ForwardedHeaders.copyRequest(in, up, null);
    assertThat(up.names()).containsExactly("Content-Type");
    io.netty.handler.codec.http.HttpHeaders back = new DefaultHttpHeaders();
    in.forEach(e -> back.add(e.getKey(), e.getValue()));
    MultiMap down = HttpHeaders.headers();
    ForwardedHeaders.copyResponse(back, down);
    assertThat(down.names()).containsExactly("Content-Type");
  }

  @Test
  void connectionTokensAreTrimmedAndCaseInsensitive() {
    assertThat(ForwardedHeaders.listedIn(" foo ,Bar", "bar")).isTrue();
    assertThat(ForwardedHeaders.listedIn("foo,\tbar\t", "bar")).isTrue();
    assertThat(ForwardedHeaders.listedIn("foo", "fo")).isFalse();
    assertThat(ForwardedHeaders.listedIn(null, "x")).isFalse();
  }
}
