package io.llmproxy.config;

import java.net.URI;
import java.util.List;
import java.util.Map;

/**
 * One entry of {@code backends}.
 *
 * @param url            the base URL, http or https, without query or fragment
 * @param name           unique; defaults to {@code host:port}
 * @param weight         at least 1; default 1
 * @param models         globs ({@code *}, {@code ?}) over the model name after mapping; empty = any model
 * @param region         a label, may be null
 * @param apiKey         sent upstream as {@code Authorization: Bearer}; null when not set
 * @param headers        extra upstream headers, never null
 * @param maxConcurrent  in-flight requests allowed; 0 = no cap
 */
public record BackendConfig(
    URI url,
    String name,
    int weight,
    List<String> models,
    String region,
    String apiKey,
    Map<String, String> headers,
    int maxConcurrent) {}
