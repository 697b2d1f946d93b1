package io.llmproxy.admin;

import static io.llmproxy.admin.AdminError.badRequest;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.IpLiterals;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.config.QuotaPeriod;
import io.llmproxy.config.Suggestions;
import io.llmproxy.config.ValueParsers;
import io.llmproxy.store.StoredKey;
import io.vertx.core.buffer.Buffer;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The fields of a key in an admin request body, read and checked as {@code api_keys} entries are in
 * the config file ({@code ConfigBinder}): the same names, enum values (any case, {@code -} or
 * {@code _}), address rules ({@link IpLiterals}) and expiry forms ({@link ValueParsers#expiry}). A
 * field that is unknown, of the wrong JSON type or out of range is an {@link AdminError} naming it.
 * Messages never echo a secret.
 */
final class KeyFields {
  /** The writable fields of a key, as in {@code api_keys}. */
  static final List<String> FIELDS = List.of("key", "name", "user_id", "status", "total_quota",
      "quota_reset_period", "allowed_ips", "allowed_models", "expires_at", "rate_limit");
  static final List<String> LIMIT_FIELDS = List.of("requests_per_second", "requests_per_minute",
      "tokens_per_minute", "max_concurrent");
  /** Fields the gateway sets and shows, which a body may not give. */
  private static final Set<String> READ_ONLY = Set.of("id", "object", "hint", "source", "created_at", "quota_used",
      "inflight", "deleted");
  /** A caller-chosen secret must be at least this long, so that it cannot be guessed. */
  static final int MIN_SECRET_LENGTH = 16;
  private static final int MAX_SECRET_LENGTH = 512;

  private static final ObjectMapper JSON = JsonMapper.builder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
      .build();

  private KeyFields() {}

  /** A new key's fields (for {@link io.llmproxy.auth.KeyRegistry#create}) and its secret, null to have one made. */
  record Create(StoredKey draft, String secret) {}

  /** The body as a JSON object; anything else is a 400. */
  static JsonNode object(Buffer body) {
    if (body.length() == 0) {
      throw badRequest("The request body must be a JSON object; it is empty.", null);
    }
    JsonNode node;
    try {
      node = JSON.readTree(body.getBytes());
    } catch (JsonProcessingException e) {
      JsonLocation at = e.getLocation();
      throw badRequest("The request body is not valid JSON: " + reason(e)
          + (at == null ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")") + ".", null);
    } catch (IOException e) {
      throw badRequest("The request body could not be read as JSON.", null);
    }
    if (node == null || !node.isObject()) {
      throw badRequest("The request body must be a JSON object, not " + kind(node) + ".", null);
    }
    return node;
  }

  /** Jackson's reason, without the location details it appends (given separately). */
  private static String reason(JsonProcessingException e) {
    String m = e.getOriginalMessage();
    for (String tail : new String[] {"\n", " (start marker at", " at [Source"}) {
      int cut = m.indexOf(tail);
      if (cut > 0) {
        m = m.substring(0, cut);
      }
    }
    return m;
  }

  /** The fields of {@code POST /admin/api-keys}: every field optional, status active unless given. */
  static Create forCreate(JsonNode body) {
    Draft d = new Draft();
    String secret = null;
    for (Iterator<Map.Entry<String, JsonNode>> it = body.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> f = it.next();
      if (f.getKey().equals("key")) {
        secret = secret(f.getValue());
      } else {
        d.apply(f.getKey(), f.getValue());
      }
    }
    return new Create(d.toStored(), secret);
  }

  /**
   * The fields of {@code PATCH /admin/api-keys/{id}} over the key's current ones: a field present
   * replaces, {@code null} clears (back to the default, or no rule); inside {@code rate_limit} each
   * field present replaces that limit alone, as in a JSON merge patch (RFC 7396).
   */
  static StoredKey forPatch(StoredKey current, JsonNode body) {
    Draft d = new Draft(current);
    for (Iterator<Map.Entry<String, JsonNode>> it = body.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> f = it.next();
      if (f.getKey().equals("key")) {
        throw badRequest("key: the secret of a key cannot be changed; create a new key and delete this one.", "key");
      }
      d.apply(f.getKey(), f.getValue());
    }
    return d.toStored();
  }

  /** The fields of a key being built or patched. */
  private static final class Draft {
    String name;
    String userId;
    KeyStatus status = KeyStatus.ACTIVE;
    Long totalQuota;
    QuotaPeriod quotaResetPeriod;
    List<String> allowedIps = List.of();
    List<String> allowedModels = List.of();
    Instant expiresAt;
    KeyLimits rateLimit;

    Draft() {}

    Draft(StoredKey k) {
      name = k.name();
      userId = k.userId();
      status = k.status();
      totalQuota = k.totalQuota();
      quotaResetPeriod = k.quotaResetPeriod();
      allowedIps = k.allowedIps();
      allowedModels = k.allowedModels();
      expiresAt = k.expiresAt();
      rateLimit = k.rateLimit();
    }

    void apply(String field, JsonNode v) {
      switch (field) {
        case "name" -> name = string(v, field);
        case "user_id" -> userId = string(v, field);
        case "status" -> {
          if (v.isNull()) {
            throw badRequest("status: cannot be null; it is active or disabled.", field);
          }
          status = enumValue(KeyStatus.class, v, field);
        }
        case "total_quota" -> totalQuota = wholeNumber(v, field, Long.MAX_VALUE);
        case "quota_reset_period" -> quotaResetPeriod = v.isNull() ? null : enumValue(QuotaPeriod.class, v, field);
        case "allowed_ips" -> allowedIps = addresses(v, field);
        case "allowed_models" -> allowedModels = strings(v, field);
        case "expires_at" -> expiresAt = expiry(v, field);
        case "rate_limit" -> rateLimit = rateLimit(v, rateLimit);
        default -> throw unknown(field, FIELDS, null);
      }
    }

    StoredKey toStored() {
      return new StoredKey(null, null, null, name, userId, status, totalQuota, quotaResetPeriod, allowedIps,
          allowedModels, expiresAt, rateLimit, null, null);
    }
  }

  private static AdminError unknown(String field, List<String> known, String parent) {
    String path = parent == null ? field : parent + "." + field;
    if (parent == null && READ_ONLY.contains(field)) {
      return badRequest(path + ": set by the gateway; it cannot be given.", path);
    }
    String suggestion = Suggestions.closest(field, known);
    return badRequest(path + ": unknown field" + (suggestion == null ? "" : " (did you mean '" + suggestion + "'?)")
        + "; expected one of: " + String.join(", ", known) + ".", path);
  }

  private static String secret(JsonNode v) {
    if (v.isNull()) {
      return null;
    }
    if (!v.isTextual()) {
      throw badRequest("key: must be a string, not " + kind(v) + ".", "key");
    }
    String s = v.textValue();
    if (s.length() < MIN_SECRET_LENGTH || s.length() > MAX_SECRET_LENGTH) {
      throw badRequest("key: must be " + MIN_SECRET_LENGTH + " to " + MAX_SECRET_LENGTH + " characters long (leave it "
          + "out to have one made).", "key");
    }
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c < 0x21 || c > 0x7e) {
        throw badRequest("key: may hold only visible ASCII characters, without spaces, since it is sent in an "
            + "Authorization header.", "key");
      }
    }
    return s;
  }

  private static String string(JsonNode v, String field) {
    if (v.isNull()) {
      return null;
    }
    if (!v.isTextual()) {
      throw badRequest(field + ": must be a string or null, not " + kind(v) + ".", field);
    }
    return v.textValue();
  }

  private static <E extends Enum<E>> E enumValue(Class<E> type, JsonNode v, String field) {
    if (!v.isTextual()) {
      throw badRequest(field + ": must be one of " + String.join(", ", ValueParsers.enumNames(type)) + ", not "
          + kind(v) + ".", field);
    }
    E constant = ValueParsers.enumConstant(type, v.textValue());
    if (constant == null) {
      throw badRequest(field + ": " + ValueParsers.unknownEnumValue(type, v.textValue()) + ".", field);
    }
    return constant;
  }

  /** Null, or a whole number from 0 to {@code max}. */
  private static Long wholeNumber(JsonNode v, String field, long max) {
    if (v.isNull()) {
      return null;
    }
    if (!v.isNumber() || !v.canConvertToExactIntegral()) {
      throw badRequest(field + ": must be a whole number or null, not " + (v.isNumber() ? v.asText() : kind(v)) + ".", field);
    }
    if (!v.canConvertToLong() || v.longValue() > max) {
      throw badRequest(field + ": must be at most " + max + ".", field);
    }
    long n = v.longValue();
    if (n < 0) {
      throw badRequest(field + ": must be at least 0, got " + n + ".", field);
    }
    return n;
  }

  /** Null, or a finite number of at least 0. */
  private static Double decimal(JsonNode v, String field) {
    if (v.isNull()) {
      return null;
    }
    if (!v.isNumber()) {
      throw badRequest(field + ": must be a number or null, not " + kind(v) + ".", field);
    }
    double d = v.doubleValue();
    if (!Double.isFinite(d)) {
      throw badRequest(field + ": is too large.", field);
    }
    if (d < 0) {
      throw badRequest(field + ": must be at least 0, got " + v.asText() + ".", field);
    }
    return d;
  }

  /** Null (no rule) or a list of non-empty strings. */
  private static List<String> strings(JsonNode v, String field) {
    if (v.isNull()) {
      return List.of();
    }
    if (!v.isArray()) {
      throw badRequest(field + ": must be a list of strings or null, not " + kind(v) + ".", field);
    }
    List<String> out = new ArrayList<>(v.size());
    for (int i = 0; i < v.size(); i++) {
      JsonNode item = v.get(i);
      String path = field + "[" + i + "]";
      if (!item.isTextual()) {
        throw badRequest(path + ": must be a string, not " + kind(item) + ".", path);
      }
      if (item.textValue().isBlank()) {
        throw badRequest(path + ": must not be empty.", path);
      }
      out.add(item.textValue());
    }
    return List.copyOf(out);
  }

  /** As {@link #strings}, each an IPv4 or IPv6 address or CIDR block; host names are refused. */
  private static List<String> addresses(JsonNode v, String field) {
    List<String> texts = strings(v, field);
    List<String> out = new ArrayList<>(texts.size());
    for (int i = 0; i < texts.size(); i++) {
      try {
        IpLiterals.checkAddressOrCidr(texts.get(i));
      } catch (IllegalArgumentException e) {
        String path = field + "[" + i + "]";
        throw badRequest(path + ": " + e.getMessage() + ".", path);
      }
      out.add(texts.get(i).strip());
    }
    return List.copyOf(out);
  }

  private static Instant expiry(JsonNode v, String field) {
    if (v.isNull()) {
      return null;
    }
    if (!v.isTextual()) {
      throw badRequest(field + ": must be a date-time string or null, not " + kind(v) + ".", field);
    }
    try {
      return ValueParsers.expiry(v.textValue());
    } catch (IllegalArgumentException e) {
      throw badRequest(field + ": " + e.getMessage() + ".", field);
    }
  }

  /** Null clears every override; an object's fields replace those of {@code base}, a null field clearing one. */
  private static KeyLimits rateLimit(JsonNode v, KeyLimits base) {
    if (v.isNull()) {
      return null;
    }
    if (!v.isObject()) {
      throw badRequest("rate_limit: must be an object with " + String.join(", ", LIMIT_FIELDS) + ", or null; not "
          + kind(v) + ".", "rate_limit");
    }
    Double rps = base == null ? null : base.requestsPerSecond();
    Long rpm = base == null ? null : base.requestsPerMinute();
    Long tpm = base == null ? null : base.tokensPerMinute();
    Integer concurrent = base == null ? null : base.maxConcurrent();
    for (Iterator<Map.Entry<String, JsonNode>> it = v.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> f = it.next();
      String path = "rate_limit." + f.getKey();
      switch (f.getKey()) {
        case "requests_per_second" -> rps = decimal(f.getValue(), path);
        case "requests_per_minute" -> rpm = wholeNumber(f.getValue(), path, Long.MAX_VALUE);
        case "tokens_per_minute" -> tpm = wholeNumber(f.getValue(), path, Long.MAX_VALUE);
        case "max_concurrent" -> {
          Long n = wholeNumber(f.getValue(), path, Integer.MAX_VALUE);
          concurrent = n == null ? null : n.intValue();
        }
        default -> throw unknown(f.getKey(), LIMIT_FIELDS, "rate_limit");
      }
    }
    return rps == null && rpm == null && tpm == null && concurrent == null ? null : new KeyLimits(rps, rpm, tpm, concurrent);
  }

  /** What a JSON value is, for messages (never the value itself). */
  static String kind(JsonNode v) {
    if (v == null || v.isMissingNode()) {
      return "nothing";
    }
    if (v.isNull()) {
      return "null";
    }
    if (v.isTextual()) {
      return "a string";
    }
    if (v.isNumber()) {
      return "a number";
    }
    if (v.isBoolean()) {
      return "true/false";
    }
    if (v.isArray()) {
      return "a list";
    }
    return v.isObject() ? "an object" : "a " + v.getNodeType().name().toLowerCase(Locale.ROOT);
  }
}
