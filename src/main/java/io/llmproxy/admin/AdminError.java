package io.llmproxy.admin;

import io.llmproxy.api.OpenAiError;

/** Why an admin call is answered with an error: the error, a message for the caller, and the field at fault. */
final class AdminError extends RuntimeException {
  private final OpenAiError error;
  private final String param;

  AdminError(OpenAiError error, String message, String param) {
    super(message, null, false, false);
    this.error = error;
    this.param = param;
  }

  /** 400 {@code invalid_request_error}, naming the field or parameter at fault (may be null). */
  static AdminError badRequest(String message, String param) {
    return new AdminError(OpenAiError.INVALID_REQUEST, message, param);
  }

  static AdminError notFound(String message) {
    return new AdminError(OpenAiError.NOT_FOUND, message, null);
  }

  OpenAiError error() {
    return error;
  }

  String param() {
    return param;
  }
}
