package io.llmproxy.api;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import io.vertx.core.buffer.Buffer;

/**
 * The gateway's own errors, in OpenAI's shape (SPEC §4) so SDKs raise their usual exceptions:
 * {@code {"error":{"message":"...","type":"...","param":null,"code":"..."}}}.
 */
public enum OpenAiError {
  INVALID_REQUEST(400, "invalid_request_error", "invalid_request_error"),
  INVALID_API_KEY(401, "invalid_request_error", "invalid_api_key"),
  INVALID_ADMIN_TOKEN(401, "invalid_request_error", "invalid_admin_token"),
  KEY_DISABLED(403, "permission_error", "key_disabled"),
  KEY_EXPIRED(403, "permission_error", "key_expired"),
  IP_NOT_ALLOWED(403, "permission_error", "ip_not_allowed"),
  MODEL_NOT_ALLOWED(403, "permission_error", "model_not_allowed"),
  NOT_FOUND(404, "invalid_request_error", "not_found"),
  MODEL_NOT_FOUND(404, "invalid_request_error", "model_not_found"),
  METHOD_NOT_ALLOWED(405, "invalid_request_error", "method_not_allowed"),
  KEY_EXISTS(409, "invalid_request_error", "key_exists"),
  KEY_IN_CONFIG(409, "invalid_request_error", "key_in_config"),
  /** {@code POST /admin/reload} found problems in the config file; nothing was changed. */
  INVALID_CONFIG(400, "invalid_request_error", "invalid_config"),
  /** {@code POST /admin/reload} has nothing to read: no config file, or the gateway is stopping. */
  RELOAD_UNAVAILABLE(409, "invalid_request_error", "reload_unavailable"),
  REQUEST_TIMEOUT(408, "invalid_request_error", "request_timeout"),
  REQUEST_TOO_LARGE(413, "invalid_request_error", "request_too_large"),
  URI_TOO_LONG(414, "invalid_request_error", "uri_too_long"),
  RATE_LIMIT_EXCEEDED(429, "rate_limit_error", "rate_limit_exceeded"),
  INSUFFICIENT_QUOTA(429, "insufficient_quota", "insufficient_quota"),
  CONCURRENCY_LIMIT_EXCEEDED(429, "rate_limit_error", "concurrency_limit_exceeded"),
  HEADERS_TOO_LARGE(431, "invalid_request_error", "headers_too_large"),
  /** A request line of HTTP/2.0, HTTP/0.9 or another major version than 1. */
  HTTP_VERSION_NOT_SUPPORTED(505, "invalid_request_error", "http_version_not_supported"),
  /** A fault of the gateway itself (a bug): answered rather than left hanging. */
  INTERNAL_ERROR(500, "server_error", "internal_error"),
  UPSTREAM_ERROR(502, "server_error", "upstream_error"),
  NO_HEALTHY_BACKEND(503, "server_error", "no_healthy_backend"),
  SHUTTING_DOWN(503, "server_error", "shutting_down"),
  UPSTREAM_TIMEOUT(504, "server_error", "upstream_timeout");

  private final int status;
  private final String type;
  private final String code;

  OpenAiError(int status, String type, String code) {
    this.status = status;
    this.type = type;
    this.code = code;
  }

  public int status() {
    return status;
  }

  public String type() {
    return type;
  }

  public String code() {
    return code;
  }

  /** The JSON body; {@code param} may be null. */
  public Buffer body(String message, String param) {
    return Buffer.buffer(json(message, param));
  }

  /** The JSON text, for bodies and for the SSE error event. */
  public String json(String message, String param) {
    JsonStringEncoder enc = JsonStringEncoder.getInstance();
    StringBuilder sb = new StringBuilder(96 + message.length());
    sb.append("{\"error\":{\"message\":\"");
    enc.quoteAsString(message, sb);
    sb.append("\",\"type\":\"").append(type).append("\",\"param\":");
    if (param == null) {
      sb.append("null");
    } else {
      sb.append('"');
      enc.quoteAsString(param, sb);
      sb.append('"');
    }
    sb.append(",\"code\":\"").append(code).append("\"}}");
    return sb.toString();
  }
}
