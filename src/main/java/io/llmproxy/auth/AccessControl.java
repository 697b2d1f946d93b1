package io.llmproxy.auth;

import io.llmproxy.api.ClientText;
import io.llmproxy.api.OpenAiError;
import io.llmproxy.limits.Quotas;
import io.llmproxy.limits.RateLimits;
import io.llmproxy.limits.Rejection;
import io.llmproxy.metrics.GatewayMetrics;
import io.llmproxy.metrics.GatewayMetrics.AuthFailure;
import io.vertx.core.MultiMap;
import java.net.InetAddress;
import java.time.Clock;
import java.time.Instant;
import java.util.function.Supplier;

/**
 * The checks before a request's body is read (SPEC §5): the key (by hash; status, expiry, client
 * address), its quota, the global rate limit, then the key's limits and concurrency. (SPEC §5 puts
 * the quota last; it is checked first here because it only reads: a refused request then takes
 * nothing from any bucket, and a key over its quota is told so whatever its rate.) Each part is
 * optional: without {@code auth.enabled} there is no key and no quota, without
 * {@code rate_limit.enabled} no rate limit.
 */
public final class AccessControl {
  private final KeyRegistry keys;
  private final RateLimits limits;
  private final Quotas quotas;
  private final ClientAddress addresses;
  private final Clock clock;
  private final GatewayMetrics metrics;

  /**
   * @param keys    null when {@code auth.enabled} is false
   * @param limits  null when {@code rate_limit.enabled} is false
   * @param quotas  null when {@code auth.enabled} is false
   */
  public AccessControl(KeyRegistry keys, RateLimits limits, Quotas quotas, ClientAddress addresses, Clock clock,
      GatewayMetrics metrics) {
    this.keys = keys;
    this.limits = limits;
    this.quotas = quotas;
    this.addresses = addresses;
    this.clock = clock;
    this.metrics = metrics;
  }

  /** Some check runs on each request. */
  public boolean active() {
    return keys != null || limits != null;
  }

  public KeyRegistry keys() {
    return keys;
  }

  public Quotas quotas() {
    return quotas;
  }

  public RateLimits limits() {
    return limits;
  }

  public ClientAddress addresses() {
    return addresses;
  }

  /** The gateway's clock: key expiry, quota periods, and the day a request's usage counts for. */
  public Clock clock() {
    return clock;
  }

  /**
   * The outcome of the checks: admitted (with the key, when auth is on), or refused with an error,
   * its message and, for a limit, the wait for {@code retry-after} (and the key, when one was found,
   * for its {@code x-ratelimit-*} headers).
   */
  public record Decision(ApiKey key, OpenAiError error, String message, String retryAfter) {
    public boolean admitted() {
      return error == null;
    }
  }

  private static final Decision ADMITTED_WITHOUT_KEY = new Decision(null, null, null, null);

  /**
   * Runs the checks. When admitted with a key and rate limits on, the key has one more request in
   * flight until {@link #release}.
   *
   * @param authorization  the {@code Authorization} header, may be null
   * @param clientAddress  the client's address (see {@link ClientAddress}), asked for only when a key
   *                       has address rules; may give null
   */
  public Decision admit(String authorization, Supplier<InetAddress> clientAddress) {
    Decision auth = authenticate(authorization, clientAddress);
    if (!auth.admitted()) {
      return auth;
    }
    ApiKey key = auth.key();
    // The quota first: it only reads, so a key over its quota takes nothing from any bucket.
    if (quotas != null && key != null) {
      Rejection r = quotas.check(key);
      if (r != null) {
        metrics.quotaExceeded();
        return new Decision(key, r.error(), r.message(), r.retryAfterSeconds());
      }
    }
    if (limits != null) {
      Rejection r = limits.admitGlobal();
      if (r != null) {
        return refused(r, key);
      }
      if (key != null) {
        r = limits.admit(key);
        if (r != null) {
          limits.refundGlobal(); // refused by the key's own limits: the gateway's request is given back
          return refused(r, key);
        }
      }
    }
    return key == null ? ADMITTED_WITHOUT_KEY : new Decision(key, null, null, null);
  }

  /**
   * The key alone (SPEC §5's "authenticate"): by hash, status, expiry and client address, with no
   * limit, slot or quota taken. Admitted without a key when auth is off. For requests that use no
   * tokens and hold no slot, such as the model list.
   */
  public Decision authenticate(String authorization, Supplier<InetAddress> clientAddress) {
    if (keys == null) {
      return ADMITTED_WITHOUT_KEY;
    }
    String secret = bearer(authorization);
    if (secret == null) {
      return authFailure(AuthFailure.MISSING, OpenAiError.INVALID_API_KEY, "You didn't provide an API key. You need to "
          + "provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
    }
    ApiKey key = keys.find(secret);
    if (key == null) {
      return authFailure(AuthFailure.INVALID, OpenAiError.INVALID_API_KEY, "Incorrect API key provided.");
    }
    if (key.disabled()) {
      return authFailure(AuthFailure.DISABLED, OpenAiError.KEY_DISABLED, "This API key is disabled.");
    }
    Instant now = clock.instant();
    if (key.expired(now)) {
      return authFailure(AuthFailure.EXPIRED, OpenAiError.KEY_EXPIRED, "This API key expired at " + key.stored().expiresAt() + ".");
    }
    if (key.hasAddressRules()) {
      InetAddress client = clientAddress.get();
      if (!key.allowsAddress(client)) {
        return authFailure(AuthFailure.IP_NOT_ALLOWED, OpenAiError.IP_NOT_ALLOWED, "This API key may not be used from "
            + (client == null ? "an unknown address" : client.getHostAddress()) + ".");
      }
    }
    return new Decision(key, null, null, null);
  }

  /** A key's model rule, once the body named the model; null when allowed. */
  public Decision checkModel(ApiKey key, String model) {
    if (key == null || key.allowsModel(model)) {
      return null;
    }
    return authFailure(AuthFailure.MODEL_NOT_ALLOWED, OpenAiError.MODEL_NOT_ALLOWED, model == null
        ? "This API key may use only some models, and the request names none."
        : "This API key may not use the model '" + ClientText.clip(model) + "'.");
  }

  /**
   * Revokes an admin key at once, and forgets its quota counter and rate-limit buckets; false when
   * there is no key with this id. Needs auth on.
   */
  public boolean revoke(String id) {
    if (!keys.delete(id)) {
      return false;
    }
    forget(id);
    return true;
  }

  /** Drops what is counted for a key that no longer exists (revoked, or gone from the config file). */
  public void forget(String id) {
    if (quotas != null) {
      quotas.forget(id);
    }
    if (limits != null) {
      limits.forget(id);
    }
  }

  /** The admitted request ended, however it ended. */
  public void release(ApiKey key) {
    if (limits != null && key != null) {
      limits.release(key);
    }
  }

  /** A finished request's tokens, for the key's quota and tokens a minute. */
  public void tokensUsed(ApiKey key, long tokens) {
    if (key == null) {
      return;
    }
    if (quotas != null) {
      quotas.add(key, tokens);
    }
    if (limits != null) {
      limits.tokensUsed(key, tokens);
    }
  }

  /** The key's {@code x-ratelimit-*} headers, when it has limits. */
  public void rateLimitHeaders(ApiKey key, MultiMap out) {
    if (limits != null && key != null) {
      limits.headers(key, out);
    }
  }

  private Decision refused(Rejection r, ApiKey key) {
    metrics.rateLimited(r.limit());
    return new Decision(key, r.error(), r.message(), r.retryAfterSeconds());
  }

  private Decision authFailure(AuthFailure reason, OpenAiError error, String message) {
    metrics.authFailure(reason);
    return new Decision(null, error, message, null);
  }

  /** The key in {@code Authorization: Bearer <key>}; null when there is none. */
  public static String bearer(String authorization) {
    if (authorization == null) {
      return null;
    }
    String a = authorization.strip();
    if (a.length() <= 7 || !a.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return null;
    }
    String k = a.substring(7).strip();
    return k.isEmpty() ? null : k;
  }
}
