package io.llmproxy.proxy;

import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.netty.handler.codec.http.HttpMethod;

/**
 * What goes upstream for one client request, the same for every attempt.
 *
 * @param method        the client's method
 * @param pathAndQuery  the client's path and query, before a backend's base path is added
 * @param clientHeaders the client's headers as received; {@link ForwardedHeaders} filters them
 * @param clientIp      the client's address, appended to X-Forwarded-For (may be null)
 * @param requestId     sent upstream as {@code x-request-id}
 * @param body          the body to send (model already mapped); replayed as is on each retry
 * @param stream        whether the client asked for a stream (timers differ)
 * @param modelLabel    the client's model name for metric labels (may be null)
 * @param sentModel     the model name the backends get (after mapping), for latency statistics (may be null)
 */
public record RequestSpec(
    HttpMethod method,
    String pathAndQuery,
    MultiMap clientHeaders,
    String clientIp,
    String requestId,
    Buffer body,
    boolean stream,
    String modelLabel,
    String sentModel) {}
