package io.llmproxy.limits;

import io.github.bucket4j.Bucket;
import io.github.bucket4j.ConsumptionProbe;
import io.github.bucket4j.TimeMeter;
import io.llmproxy.api.OpenAiError;
import io.llmproxy.auth.ApiKey;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.config.RateLimitConfig;
import io.llmproxy.metrics.GatewayMetrics.RateLimit;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpHeaders;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Rate limits (SPEC §3 {@code rate_limit}) on local Bucket4j token buckets: the gateway's requests a
 * second with a burst, and per key requests a second, requests a minute, tokens a minute and requests
 * in flight. Buckets refill greedily (a rate of 10/s gives a token every 100 ms, not 10 at each
 * second). Tokens are counted when a request ends, from its usage; a key over its tokens a minute is
 * refused until the bucket is positive again. A per-key bucket is rebuilt when the key's limits change.
 */
public final class RateLimits {
  private static final long S = 1_000_000_000L;
  private static final long MIN = 60 * S;

  private final TimeMeter time;
  /** Replaced whole by a config reload that changes it; null without a gateway-wide limit. */
  private volatile Global global;
  private final Map<String, KeyState> keys = new ConcurrentHashMap<>();

  /**
   * A key's buckets, for the limits they were built from, and its in-flight count, which outlives
   * them: requests admitted under the old limits are still in flight and are released into it.
   */
  private static final class KeyState {
    final KeyLimits limits;
    final Bucket rps;
    final Bucket rpm;
    final Bucket tpm;
    final AtomicInteger inflight;

    KeyState(KeyLimits l, TimeMeter time, AtomicInteger inflight) {
      this.limits = l;
      this.inflight = inflight;
      double r = l.requestsPerSecond() == null ? 0 : l.requestsPerSecond();
      this.rps = r > 0 ? bucket(Math.max(1, (long) Math.ceil(r)), r, time) : null;
      long m = l.requestsPerMinute() == null ? 0 : l.requestsPerMinute();
      this.rpm = m > 0 ? bucket(m, m / 60.0, time) : null;
      long t = l.tokensPerMinute() == null ? 0 : l.tokensPerMinute();
      this.tpm = t > 0 ? bucket(t, t / 60.0, time) : null;
    }
  }

  /** The gateway-wide bucket and the rate it was built for. */
  private record Global(Bucket bucket, double requestsPerSecond) {}

  public RateLimits(RateLimitConfig config, TimeMeter time) {
    this.time = time;
    global(config.global());
  }

  /**
   * Sets the gateway-wide limit (a config reload): a new bucket, full, at the new rate and burst. The
   * per-key limits follow the keys' own, which the key registry rebuilds.
   */
  public void global(RateLimitConfig.GlobalLimit g) {
    double rps = g == null ? 0 : g.requestsPerSecond();
    global = rps > 0 ? new Global(bucket(Math.max(1, g.burstSize()), rps, time), rps) : null;
  }

  /** A bucket of {@code capacity} refilled at {@code perSecond}, full at the start. */
  static Bucket bucket(long capacity, double perSecond, TimeMeter time) {
    // Refill n tokens every n/rate seconds, n whole and at least 1, for rates below 1/s too. Bucket4j
    // refills at most a token a nanosecond: a higher rate is no limit in practice, and is clamped.
    double rate = Math.min(perSecond, S);
    long n = Math.max(1, (long) Math.ceil(rate));
    long periodNanos = Math.max(n, Math.round(n * S / rate));
    return Bucket.builder()
        .addLimit(l -> l.capacity(capacity).refillGreedy(n, Duration.ofNanos(periodNanos)))
        .withCustomTimePrecision(time)
        .build();
  }

  private KeyState state(ApiKey key) {
    KeyLimits l = key.limits();
    KeyState s = keys.get(key.id());
    if (s == null || !s.limits.equals(l)) {
      s = keys.compute(key.id(), (id, old) -> old != null && old.limits.equals(l) ? old
          : new KeyState(l, time, old == null ? new AtomicInteger() : old.inflight));
    }
    return s;
  }

  /** The gateway-wide limit; null when the request may go on. */
  public Rejection admitGlobal() {
    Global g = global;
    if (g == null) {
      return null;
    }
    ConsumptionProbe p = g.bucket().tryConsumeAndReturnRemaining(1);
    return p.isConsumed() ? null : new Rejection(OpenAiError.RATE_LIMIT_EXCEEDED,
        "The gateway is over its limit of " + fmt(g.requestsPerSecond()) + " requests per second. Please retry shortly.",
        p.getNanosToWaitForRefill(), RateLimit.GLOBAL_REQUESTS);
  }

  /**
   * The key's limits; null when admitted, and then one request is in flight for the key until
   * {@link #release}. A refused request takes nothing from the key's buckets.
   */
  public Rejection admit(ApiKey key) {
    KeyState s = state(key);
    KeyLimits l = s.limits;
    if (s.tpm != null && s.tpm.getAvailableTokens() <= 0) {
      long wait = s.tpm.estimateAbilityToConsume(1).getNanosToWaitForRefill();
      return new Rejection(OpenAiError.RATE_LIMIT_EXCEEDED, "Rate limit reached for tokens per minute: limit "
          + l.tokensPerMinute() + ". Please retry after the wait given in retry-after.", wait, RateLimit.KEY_TOKENS);
    }
    if (s.rps != null) {
      ConsumptionProbe p = s.rps.tryConsumeAndReturnRemaining(1);
      if (!p.isConsumed()) {
        return new Rejection(OpenAiError.RATE_LIMIT_EXCEEDED, "Rate limit reached for requests per second: limit "
            + fmt(l.requestsPerSecond()) + ".", p.getNanosToWaitForRefill(), RateLimit.KEY_REQUESTS);
      }
    }
    if (s.rpm != null) {
      ConsumptionProbe p = s.rpm.tryConsumeAndReturnRemaining(1);
      if (!p.isConsumed()) {
        refund(s.rps);
        return new Rejection(OpenAiError.RATE_LIMIT_EXCEEDED, "Rate limit reached for requests per minute: limit "
            + l.requestsPerMinute() + ".", p.getNanosToWaitForRefill(), RateLimit.KEY_REQUESTS);
      }
    }
    int max = l.maxConcurrent() == null ? 0 : l.maxConcurrent();
    if (max > 0) {
      if (s.inflight.incrementAndGet() > max) {
        s.inflight.decrementAndGet();
        refund(s.rps);
        refund(s.rpm);
        return new Rejection(OpenAiError.CONCURRENCY_LIMIT_EXCEEDED, "Too many requests in flight for this key: limit "
            + max + ". Retry when one of them has ended.", S, RateLimit.KEY_CONCURRENCY);
      }
    } else {
      s.inflight.incrementAndGet();
    }
    return null;
  }

  /** Gives back the global token of a request refused afterwards (by its key's limits). */
  public void refundGlobal() {
    Global g = global;
    if (g != null) {
      refund(g.bucket());
    }
  }

  /** A revoked key's buckets and count go. */
  public void forget(String keyId) {
    keys.remove(keyId);
  }

  private static void refund(Bucket b) {
    if (b != null) {
      b.addTokens(1);
    }
  }

  /** The request admitted by {@link #admit} ended, however it ended. */
  public void release(ApiKey key) {
    KeyState s = keys.get(key.id());
    if (s != null) {
      s.inflight.decrementAndGet();
    }
  }

  /** Counts a finished request's tokens against the key's tokens a minute (the bucket may go below zero). */
  public void tokensUsed(ApiKey key, long tokens) {
    KeyState s = keys.get(key.id());
    if (s != null && s.tpm != null && tokens > 0) {
      s.tpm.consumeIgnoringRateLimits(tokens);
    }
  }

  /** Requests in flight for the key. */
  public int inflight(ApiKey key) {
    KeyState s = keys.get(key.id());
    return s == null ? 0 : s.inflight.get();
  }

  /**
   * OpenAI's {@code x-ratelimit-*} headers for the key: requests from its per-minute limit (else its
   * per-second one), tokens from its tokens a minute. Nothing for a dimension without a limit.
   */
  public void headers(ApiKey key, MultiMap out) {
    KeyState s = keys.get(key.id());
    if (s == null) {
      return;
    }
    KeyLimits l = s.limits;
    if (s.rpm != null) {
      put(out, REQUESTS, l.requestsPerMinute(), s.rpm, l.requestsPerMinute() / 60.0);
    } else if (s.rps != null) {
      put(out, REQUESTS, (long) Math.ceil(l.requestsPerSecond()), s.rps, l.requestsPerSecond());
    }
    if (s.tpm != null) {
      put(out, TOKENS, l.tokensPerMinute(), s.tpm, l.tokensPerMinute() / 60.0);
    }
  }

  /** The three header names of one dimension, encoded once. */
  private record Names(CharSequence limit, CharSequence remaining, CharSequence reset) {
    static Names of(String what) {
      return new Names(HttpHeaders.createOptimized("x-ratelimit-limit-" + what),
          HttpHeaders.createOptimized("x-ratelimit-remaining-" + what),
          HttpHeaders.createOptimized("x-ratelimit-reset-" + what));
    }
  }

  private static final Names REQUESTS = Names.of("requests");
  private static final Names TOKENS = Names.of("tokens");

  private static void put(MultiMap out, Names n, long limit, Bucket b, double perSecond) {
    long available = b.getAvailableTokens();
    out.set(n.limit(), Long.toString(limit));
    out.set(n.remaining(), Long.toString(Math.max(0, available)));
    out.set(n.reset(), duration((long) Math.ceil((limit - available) * S / perSecond)));
  }

  /** OpenAI's style: {@code 20ms}, {@code 1s}, {@code 6m0s}. */
  static String duration(long nanos) {
    if (nanos < S) {
      return (nanos + 999_999) / 1_000_000 + "ms";
    }
    long s = (nanos + S - 1) / S;
    return s < 60 ? s + "s" : s / 60 + "m" + s % 60 + "s";
  }

  private static String fmt(double d) {
    return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
  }
}
