package io.llmproxy.sim;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.List;

/**
 * How a {@link Simulator} behaves. Immutable; change one field with the {@code with...} methods and
 * hand the result to {@link Simulator#options(SimulatorOptions)} to swap behaviour at runtime.
 *
 * @param name identifies the backend: in the token texts, as {@code system_fingerprint} of
 *     non-streaming responses, and in {@code /sim/stats}
 * @param host the address to listen on
 * @param port the port to listen on; 0 picks an ephemeral port
 * @param ttft time to first token (streaming); non-streaming responses come after
 *     {@code ttft + (tokens - 1) * itl}
 * @param itl inter-token latency
 * @param tokens output tokens when the request names no {@code max_tokens},
 *     {@code max_completion_tokens} or (TGI) {@code parameters.max_new_tokens}
 * @param jitter uniform {@code +/- jitter} added to the ttft and to each itl, never below zero
 * @param tailProbability probability that a request gets {@code tailDelay} added to its ttft
 * @param tailDelay the heavy-tail delay
 * @param failRate probability that an inference request fails with {@code failStatus} before any
 *     byte
 * @param failStatus the status of injected failures; a 429 carries {@code retry-after: 1}
 * @param hangRate probability that an inference request never gets a response
 * @param earlyHeaders streaming: status, headers and the role chunk go out at once, tokens only
 *     after the ttft
 * @param models the served model names, listed by {@code GET /v1/models}; the first is used when a
 *     request names none
 * @param strictModels when true, a request for a model not in {@code models} gets 404
 *     {@code model_not_found}; otherwise any model is served and echoed
 * @param healthy whether {@code GET /health} answers 200 (true) or 503 (false)
 * @param recordLimit the most {@link RequestRecord}s kept; the oldest are dropped first
 */
public record SimulatorOptions(
    String name,
    String host,
    int port,
    Duration ttft,
    Duration itl,
    int tokens,
    Duration jitter,
    double tailProbability,
    Duration tailDelay,
    double failRate,
    int failStatus,
    double hangRate,
    boolean earlyHeaders,
    List<String> models,
    boolean strictModels,
    boolean healthy,
    int recordLimit) {

  public SimulatorOptions {
    requireNonNull(name, "name");
    requireNonNull(host, "host");
    requireNonNull(ttft, "ttft");
    requireNonNull(itl, "itl");
    requireNonNull(jitter, "jitter");
    requireNonNull(tailDelay, "tailDelay");
    requireNonNull(models, "models");
    models = List.copyOf(models);
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be in 0..65535: " + port);
    }
    requireNotNegative(ttft, "ttft");
    requireNotNegative(itl, "itl");
    requireNotNegative(jitter, "jitter");
    requireNotNegative(tailDelay, "tailDelay");
    if (tokens < 1) {
      throw new IllegalArgumentException("tokens must be at least 1: " + tokens);
    }
    requireProbability(tailProbability, "tailProbability");
    requireProbability(failRate, "failRate");
    requireProbability(hangRate, "hangRate");
    if (failStatus < 100 || failStatus > 599) {
      throw new IllegalArgumentException("failStatus must be an HTTP status: " + failStatus);
    }
    if (models.isEmpty()) {
      throw new IllegalArgumentException("models must not be empty");
    }
    if (recordLimit < 0) {
      throw new IllegalArgumentException("recordLimit must not be negative: " + recordLimit);
    }
  }

  /**
   * Name {@code sim}, 127.0.0.1, an ephemeral port, ttft 200ms, itl 20ms, 16 tokens, no jitter, no
   * tail, no failures or hangs, model {@code sim-model} (not strict), healthy, 10,000 records.
   */
  public static SimulatorOptions defaults() {
    return new SimulatorOptions(
        "sim",
        "127.0.0.1",
        0,
        Duration.ofMillis(200),
        Duration.ofMillis(20),
        16,
        Duration.ZERO,
        0,
        Duration.ZERO,
        0,
        500,
        0,
        false,
        List.of("sim-model"),
        false,
        true,
        10_000);
  }

  public SimulatorOptions withName(String name) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withHost(String host) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withPort(int port) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withTtft(Duration ttft) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withItl(Duration itl) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withTokens(int tokens) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withJitter(Duration jitter) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withTail(double tailProbability, Duration tailDelay) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withFail(double failRate, int failStatus) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withHangRate(double hangRate) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withEarlyHeaders(boolean earlyHeaders) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withModels(List<String> models) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withModels(String... models) {
    return withModels(List.of(models));
  }

  public SimulatorOptions withStrictModels(boolean strictModels) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withHealthy(boolean healthy) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  public SimulatorOptions withRecordLimit(int recordLimit) {
    return new SimulatorOptions(name, host, port, ttft, itl, tokens, jitter, tailProbability,
        tailDelay, failRate, failStatus, hangRate, earlyHeaders, models, strictModels, healthy,
        recordLimit);
  }

  private static void requireNotNegative(Duration d, String what) {
    if (d.isNegative()) {
      throw new IllegalArgumentException(what + " must not be negative: " + d);
    }
  }

  private static void requireProbability(double p, String what) {
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException(what + " must be in [0, 1]: " + p);
    }
  }
}
