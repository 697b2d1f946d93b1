package io.llmproxy.proxy;

import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseDecoder;
import io.netty.handler.codec.http.HttpStatusClass;

/**
 * Netty's HTTP response decoder for one upstream connection, which carries one exchange at a time:
 * told the method of the request being answered (a response to HEAD has no body, whatever its
 * headers say), and able to say whether bytes arrived that no response accounts for. What {@code
 * HttpClientCodec} adds to the decoder is the first, for any number of requests in flight; the second
 * it cannot tell.
 */
final class UpstreamResponseDecoder extends HttpResponseDecoder {
  private boolean headRequest;

  UpstreamResponseDecoder(HttpDecoderConfig config) {
    super(config);
  }

  /** The request about to be sent: its response is decoded with the method in mind. */
  void expect(HttpMethod method) {
    headRequest = HttpMethod.HEAD.equals(method);
  }

  /**
   * Bytes received but not (yet) part of any decoded message: while a response is being read, the
   * start of its next piece; once it has ended, bytes the backend sent past its end, which the next
   * exchange on the connection would read as the start of its response.
   */
  boolean hasUndecodedBytes() {
    return undecodedBytes() > 0;
  }

  /**
   * How many bytes received are not decoded yet. While a read is being decoded, everything it can
   * still hand on (the rest of its body, with the chunks' framing) is among them.
   */
  int undecodedBytes() {
    return actualReadableBytes();
  }

  @Override
  protected boolean isContentAlwaysEmpty(HttpMessage msg) {
    if (headRequest && ((HttpResponse) msg).status().codeClass() != HttpStatusClass.INFORMATIONAL) {
      return true;
    }
    return super.isContentAlwaysEmpty(msg);
  }
}
