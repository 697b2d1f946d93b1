package io.llmproxy.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpHeaders;
import org.junit.jupiter.api.Test;

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
    MultiMap out = HttpHeaders.headers();
    ForwardedHeaders.copyRequest(in, out, "192.0.2.7");
    assertThat(out.names()).containsExactlyInAnyOrder("Content-Type", "OpenAI-Organization", "x-forwarded-for");
    assertThat(out.get("x-forwarded-for")).isEqualTo("10.0.0.1, 192.0.2.7");
  }

  @Test
  void responseDropsHopByHopOnly() {
    MultiMap in = HttpHeaders.headers()
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
    MultiMap up = HttpHeaders.headers();
    ForwardedHeaders.copyRequest(in, up, null);
    assertThat(up.names()).containsExactly("Content-Type");
    MultiMap down = HttpHeaders.headers();
    ForwardedHeaders.copyResponse(in, down);
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
