package io.llmproxy.proxy;

import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;

/**
 * What goes upstream for one client request, the same for every attempt.
 *
 * @param method        the client's method
 * @param pathAndQuery  the client's path and query, before a backend's base path is added
 * @param headers       the client's headers already filtered by {@link ForwardedHeaders}
 * @param body          the body to send (model already mapped); replayed as is on each retry
 * @param stream        whether the client asked for a stream (timers differ)
 * @param modelLabel    the client's model name for metric labels (may be null)
 */
public record RequestSpec(
    HttpMethod method, String pathAndQuery, MultiMap headers, Buffer body, boolean stream, String modelLabel) {}
