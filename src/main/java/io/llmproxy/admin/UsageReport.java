package io.llmproxy.admin;

import static io.llmproxy.admin.AdminError.badRequest;

import io.llmproxy.auth.ApiKey;
import io.llmproxy.auth.KeyRegistry;
import io.llmproxy.store.UsageTotal;
import io.vertx.core.MultiMap;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.LocalDate;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Set;

/**
 * {@code GET /admin/usage?key=&from=&to=}: the usage totals per key and UTC day that the store keeps,
 * for one key or all, between two days (inclusive; by default the last {@value #DEFAULT_DAYS} days,
 * today included), and their sum.
 */
final class UsageReport {
  static final int DEFAULT_DAYS = 30;
  /** Requests made without a key (auth off) are totalled under this id in the store. */
  private static final String NO_KEY = io.llmproxy.usage.UsageRecorder.NO_KEY;
  private static final Set<String> PARAMS = Set.of("key", "from", "to");

  private UsageReport() {}

  /** What to report: {@code keyId} null for every key. */
  record Query(String keyId, LocalDate from, LocalDate to) {}

  /** The query parameters; an empty value counts as absent. */
  static Query query(MultiMap params, LocalDate today) {
    for (String name : params.names()) {
      if (!PARAMS.contains(name)) {
        throw badRequest(name + ": unknown query parameter; expected key, from or to.", name);
      }
      if (params.getAll(name).size() > 1) {
        throw badRequest(name + ": given more than once.", name);
      }
    }
    String key = blankToNull(params.get("key"));
    LocalDate from = day(params.get("from"), "from");
    LocalDate to = day(params.get("to"), "to");
    if (to == null) {
      to = today;
    }
    if (from == null) {
      from = to.minusDays(DEFAULT_DAYS - 1);
    }
    if (from.isAfter(to)) {
      throw badRequest("from: " + from + " is after to (" + to + ").", "from");
    }
    return new Query(key, from, to);
  }

  private static LocalDate day(String text, String param) {
    String s = blankToNull(text);
    if (s == null) {
      return null;
    }
    try {
      LocalDate d = LocalDate.parse(s.strip());
      if (d.getYear() < 1970 || d.getYear() > 9999) {
        throw badRequest(param + ": '" + s + "' is out of range; years 1970 to 9999.", param);
      }
      return d;
    } catch (DateTimeParseException e) {
      throw badRequest(param + ": '" + s + "' is not a date; write a UTC day as 2026-11-27.", param);
    }
  }

  private static String blankToNull(String s) {
    return s == null || s.isBlank() ? null : s;
  }

  /** The rows, each named after its key when the key still exists ({@code keys} may be null), and their total. */
  static JsonObject render(Query q, List<UsageTotal> rows, KeyRegistry keys) {
    JsonArray data = new JsonArray();
    long requests = 0;
    long prompt = 0;
    long completion = 0;
    for (UsageTotal t : rows) {
      boolean keyed = !t.keyId().equals(NO_KEY);
      ApiKey key = keys != null && keyed ? keys.get(t.keyId()) : null;
      data.add(new JsonObject()
          .put("key_id", keyed ? t.keyId() : null)
          .put("key_name", key == null ? null : key.name())
          .put("user_id", key == null ? null : key.userId())
          .put("day", t.day().toString())
          .put("requests", t.requests())
          .put("prompt_tokens", t.promptTokens())
          .put("completion_tokens", t.completionTokens())
          .put("total_tokens", t.promptTokens() + t.completionTokens()));
      requests += t.requests();
      prompt += t.promptTokens();
      completion += t.completionTokens();
    }
    return new JsonObject()
        .put("object", "list")
        .put("key", q.keyId())
        .put("from", q.from().toString())
        .put("to", q.to().toString())
        .put("data", data)
        .put("total", new JsonObject()
            .put("requests", requests)
            .put("prompt_tokens", prompt)
            .put("completion_tokens", completion)
            .put("total_tokens", prompt + completion));
  }
}
