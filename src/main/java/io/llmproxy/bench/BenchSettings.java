package io.llmproxy.bench;

import static java.util.Objects.requireNonNull;

import io.llmproxy.config.ValueParsers;
import java.net.URI;
import java.time.Duration;
import java.util.Map;

/**
 * What {@link LoadGenerator} sends, how, and for how long.
 *
 * @param baseUrl      scheme, host and port of the endpoint
 * @param path         request path, {@code /v1/chat/completions} or {@code /v1/completions}
 * @param model        the model asked for
 * @param stream       ask for streaming responses
 * @param concurrency  closed loop: requests in flight at once, each user sending its next request
 *                     when the last one ended. Open loop: connections in the pool; requests beyond
 *                     them wait in its queue, and the wait counts in their latency
 * @param rate         open loop: requests per second, sent whether or not earlier ones ended;
 *                     0 for a closed loop
 * @param poisson      open loop: exponential gaps between requests (Poisson arrivals) instead of
 *                     even ones
 * @param maxInflight  open loop: requests in flight at most; a request due while this many are out
 *                     is not sent and counts as an {@code overload} error (the generator could not
 *                     keep the rate)
 * @param duration     the measured period
 * @param warmup       sent before the measured period, not measured
 * @param rampUp       closed loop: the users' first requests are spread over this long; open loop:
 *                     the rate rises evenly from 5% to the full rate over this long (a cold target,
 *                     or the generator's own JIT, would otherwise start behind a backlog)
 * @param maxTokens    {@code max_tokens} asked for; 0 to leave it out
 * @param promptChars  the prompt's length in characters (about 4 per token)
 * @param includeUsage streams ask for {@code stream_options.include_usage}, so output tokens are
 *                     counted from the backend's usage rather than from the events
 */
public record BenchSettings(
    URI baseUrl,
    String path,
    String model,
    boolean stream,
    int concurrency,
    double rate,
    boolean poisson,
    int maxInflight,
    Duration duration,
    Duration warmup,
    Duration rampUp,
    int maxTokens,
    int promptChars,
    boolean includeUsage,
    Map<String, String> headers) {

  public BenchSettings {
    requireNonNull(baseUrl, "baseUrl");
    requireNonNull(path, "path");
    requireNonNull(model, "model");
    requireNonNull(duration, "duration");
    requireNonNull(warmup, "warmup");
    requireNonNull(rampUp, "rampUp");
    headers = headers == null ? Map.of() : Map.copyOf(headers);
    baseUrl = checkedBaseUrl(baseUrl);
    if (concurrency < 1) {
      throw new IllegalArgumentException("concurrency must be at least 1, got " + concurrency);
    }
    if (rate < 0 || Double.isNaN(rate)) {
      throw new IllegalArgumentException("rate must be 0 (closed loop) or more, got " + rate);
    }
    if (rate > 0 && maxInflight < 1) {
      throw new IllegalArgumentException("max in-flight must be at least 1, got " + maxInflight);
    }
    if (duration.isZero() || duration.isNegative()) {
      throw new IllegalArgumentException("duration must be more than 0");
    }
    if (maxTokens < 0 || promptChars < 0) {
      throw new IllegalArgumentException("max tokens and prompt length must not be negative");
    }
    if (!path.startsWith("/")) {
      throw new IllegalArgumentException("path must start with /, got " + path);
    }
  }

  /**
   * An http or https URL of a host, with at most a port (the request path is {@code path}), without
   * the trailing slash: the config's check of a URL ({@link ValueParsers#httpUrl}), and no path.
   */
  private static URI checkedBaseUrl(URI url) {
    URI checked;
    try {
      checked = ValueParsers.httpUrl(url.toString(), true);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--url must be an http:// or https:// URL with a host, like "
          + "http://127.0.0.1:8080; '" + url + "' " + e.getMessage());
    }
    String path = checked.getRawPath();
    if (!path.isEmpty() && !path.equals("/") || checked.getRawQuery() != null) {
      throw new IllegalArgumentException("--url is the endpoint's scheme, host and port only (http://host:8080); "
          + "the request path is --path; got '" + url + "'");
    }
    return URI.create(checked.getScheme() + "://" + checked.getRawAuthority());
  }

  /** A closed loop of {@code concurrency} users for {@code duration}, streaming or not, with defaults for the rest. */
  public static BenchSettings closedLoop(URI baseUrl, boolean stream, int concurrency, Duration duration) {
    return new BenchSettings(baseUrl, "/v1/chat/completions", "sim-model", stream, concurrency, 0, false, 0,
        duration, Duration.ZERO, Duration.ZERO, 0, 64, true, Map.of());
  }

  /** The same load as an open loop at {@code rate} requests per second. */
  public BenchSettings withRate(double rate, boolean poisson, int maxInflight) {
    return new BenchSettings(baseUrl, path, model, stream, concurrency, rate, poisson, maxInflight, duration, warmup,
        rampUp, maxTokens, promptChars, includeUsage, headers);
  }

  public BenchSettings withWarmup(Duration warmup) {
    return new BenchSettings(baseUrl, path, model, stream, concurrency, rate, poisson, maxInflight, duration, warmup,
        rampUp, maxTokens, promptChars, includeUsage, headers);
  }

  public BenchSettings withRampUp(Duration rampUp) {
    return new BenchSettings(baseUrl, path, model, stream, concurrency, rate, poisson, maxInflight, duration, warmup,
        rampUp, maxTokens, promptChars, includeUsage, headers);
  }

  public BenchSettings withMaxTokens(int maxTokens) {
    return new BenchSettings(baseUrl, path, model, stream, concurrency, rate, poisson, maxInflight, duration, warmup,
        rampUp, maxTokens, promptChars, includeUsage, headers);
  }

  public boolean openLoop() {
    return rate > 0;
  }

  /** The request body: a chat or completions request with the prompt, and the options above. */
  String requestBody() {
    String prompt = "Hello ".repeat(Math.max(1, promptChars / 6));
    StringBuilder b = new StringBuilder(prompt.length() + 200).append("{\"model\":\"").append(model).append('"');
    if (path.endsWith("/completions") && !path.endsWith("/chat/completions")) {
      b.append(",\"prompt\":\"").append(prompt).append('"');
    } else {
      b.append(",\"messages\":[{\"role\":\"user\",\"content\":\"").append(prompt).append("\"}]");
    }
    if (maxTokens > 0) {
      b.append(",\"max_tokens\":").append(maxTokens);
    }
    b.append(",\"stream\":").append(stream);
    if (stream && includeUsage) {
      b.append(",\"stream_options\":{\"include_usage\":true}");
    }
    return b.append('}').toString();
  }
}
