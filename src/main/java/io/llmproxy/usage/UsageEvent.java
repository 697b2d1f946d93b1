package io.llmproxy.usage;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;

/**
 * One request's usage, recorded exactly once when the request ends (SPEC §5, §9), abandoned streams
 * included. The webhook receives it as JSON, with {@code request_id} as the idempotency key.
 *
 * @param requestId         the request's {@code x-request-id}
 * @param timestamp         when the request ended
 * @param keyId             the API key's id; null with auth off
 * @param keyName           the key's name, may be null
 * @param userId            the key's user_id, may be null
 * @param model             the model the client asked for
 * @param backend           the backend that answered, may be null
 * @param promptTokens      prompt tokens
 * @param completionTokens  completion tokens
 * @param estimated         true when the backend reported no usage and the counts are estimates
 *                          (also for a stream abandoned before its usage chunk)
 * @param stream            a streaming request
 * @param status            the status the client got (499 when it went away)
 * @param abandoned         the client left before the end
 * @param latencyMs         total latency as the client saw it
 */
public record UsageEvent(
    String requestId,
    Instant timestamp,
    String keyId,
    String keyName,
    String userId,
    String model,
    String backend,
    long promptTokens,
    long completionTokens,
    boolean estimated,
    boolean stream,
    int status,
    boolean abandoned,
    double latencyMs) {

  public long totalTokens() {
    return promptTokens + completionTokens;
  }

  /**
   * The webhook's JSON body, made once when the event is spooled (re-deliveries send the same bytes).
   * {@code event_id} is new and unique for each event: a client may choose its {@code x-request-id}
   * (so two requests can share one), and a receiver that must not merge them dedupes on
   * {@code event_id}; the {@code Idempotency-Key} header is the request id (SPEC §9).
   */
  public byte[] toJson() {
    StringBuilder sb = new StringBuilder(360);
    java.util.concurrent.ThreadLocalRandom r = java.util.concurrent.ThreadLocalRandom.current();
    sb.append("{\"event_id\":\"evt_").append(Long.toHexString(r.nextLong() | Long.MIN_VALUE))
        .append(Long.toHexString(r.nextLong() | Long.MIN_VALUE)).append("\",\"request_id\":");
    str(sb, requestId);
    sb.append(",\"timestamp\":");
    str(sb, timestamp.toString());
    sb.append(",\"key_id\":");
    str(sb, keyId);
    sb.append(",\"key_name\":");
    str(sb, keyName);
    sb.append(",\"user_id\":");
    str(sb, userId);
    sb.append(",\"model\":");
    str(sb, model);
    sb.append(",\"backend\":");
    str(sb, backend);
    sb.append(",\"prompt_tokens\":").append(promptTokens)
        .append(",\"completion_tokens\":").append(completionTokens)
        .append(",\"total_tokens\":").append(totalTokens())
        .append(",\"estimated\":").append(estimated)
        .append(",\"stream\":").append(stream)
        .append(",\"status\":").append(status)
        .append(",\"abandoned\":").append(abandoned)
        .append(",\"latency_ms\":").append(Math.round(latencyMs * 1000) / 1000.0)
        .append('}');
    return sb.toString().getBytes(StandardCharsets.UTF_8);
  }

  private static void str(StringBuilder sb, String s) {
    if (s == null) {
      sb.append("null");
    } else {
      sb.append('"');
      JsonStringEncoder.getInstance().quoteAsString(s, sb);
      sb.append('"');
    }
  }
}
