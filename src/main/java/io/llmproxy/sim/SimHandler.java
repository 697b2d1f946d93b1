package io.llmproxy.sim;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.io.IOException;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Routes one request: logs it, watches for its client's disconnect from the first moment, reads the
 * body, then answers as the current {@link Profile} says.
 */
final class SimHandler implements Handler<HttpServerRequest> {

  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final CharSequence RETRY_AFTER = HttpHeaders.createOptimized("retry-after");
  private static final CharSequence ONE = HttpHeaders.createOptimized("1");

  /** The kinds of inference request. */
  private enum Kind { CHAT, COMPLETION, EMBEDDING, TGI, TGI_STREAM }

  private final Vertx vertx;
  private final SimState state;
  private final TickClock clock;

  /** One per HTTP server: all its requests, and so its clock, run on one event loop. */
  SimHandler(Vertx vertx, SimState state) {
    this.vertx = vertx;
    this.state = state;
    this.clock = new TickClock(vertx);
  }

  @Override
  public void handle(HttpServerRequest request) {
    HttpServerResponse response = request.response();
    if (request.method() == HttpMethod.GET && "/sim/stats".equals(request.path())) {
      response.putHeader(HttpHeaders.CONTENT_TYPE, SimState.APPLICATION_JSON)
          .end(state.statsJson());
      return;
    }
    SimExchange exchange = state.begin(request, state.connectionId(request.connection()));
    response.closeHandler(v -> state.clientClosed(exchange));
    Profile profile = state.profile();
    request.body().onSuccess(body -> dispatch(request, response, exchange, profile, body));
  }

  private void dispatch(HttpServerRequest request, HttpServerResponse response,
      SimExchange exchange, Profile profile, Buffer body) {
    byte[] bytes = body.getBytes();
    exchange.body(bytes);
    String path = exchange.path;
    HttpMethod method = request.method();
    if (method == HttpMethod.GET) {
      switch (path) {
        case "/health" -> state.respondRaw(response, exchange,
            profile.options.healthy() ? 200 : 503, null);
        case "/v1/models" ->
            state.respond(response, exchange, 200, Buffer.buffer(profile.modelsBody));
        default -> notFound(response, exchange);
      }
    } else if (method == HttpMethod.POST) {
      switch (path) {
        case "/v1/chat/completions" -> infer(Kind.CHAT, response, exchange, profile, bytes);
        case "/v1/completions" -> infer(Kind.COMPLETION, response, exchange, profile, bytes);
        case "/v1/embeddings" -> infer(Kind.EMBEDDING, response, exchange, profile, bytes);
        case "/generate" -> infer(Kind.TGI, response, exchange, profile, bytes);
        case "/generate_stream" -> infer(Kind.TGI_STREAM, response, exchange, profile, bytes);
        default -> notFound(response, exchange);
      }
    } else {
      notFound(response, exchange);
    }
  }

  private void infer(Kind kind, HttpServerResponse response, SimExchange exchange,
      Profile profile, byte[] bytes) {
    JsonNode json = parse(bytes);
    if (json == null || !json.isObject()) {
      exchange.request(null, kind == Kind.TGI_STREAM);
      badRequest(response, exchange, "The request body is not a JSON object.");
      return;
    }
    JsonNode modelNode = json.get("model");
    String model = modelNode != null && modelNode.isTextual() ? modelNode.textValue() : null;
    JsonNode streamNode = json.get("stream");
    boolean stream = kind == Kind.TGI_STREAM
        || (kind != Kind.TGI && kind != Kind.EMBEDDING
            && streamNode != null && streamNode.isBoolean() && streamNode.booleanValue());
    exchange.request(model, stream);

    JsonNode maxNode = maxTokens(kind, json);
    int tokens = profile.options.tokens();
    boolean finishLength = false;
    if (maxNode != null && !maxNode.isNull()) {
      if (!maxNode.isIntegralNumber() || !maxNode.canConvertToInt() || maxNode.intValue() < 1) {
        badRequest(response, exchange, "max_tokens must be an integer of at least 1.");
        return;
      }
      tokens = maxNode.intValue();
      finishLength = true;
    }
    boolean openAi = kind == Kind.CHAT || kind == Kind.COMPLETION || kind == Kind.EMBEDDING;
    if (openAi && model != null && profile.options.strictModels()
        && !profile.models.contains(model)) {
      state.respond(response, exchange, 404, Payloads.error(
          "The model `" + model + "` does not exist.", "invalid_request_error",
          "model_not_found"));
      return;
    }

    ThreadLocalRandom random = ThreadLocalRandom.current();
    SimulatorOptions options = profile.options;
    if (options.failRate() > 0 && random.nextDouble() < options.failRate()) {
      fail(response, exchange, options);
      return;
    }
    if (options.hangRate() > 0 && random.nextDouble() < options.hangRate()) {
      state.hung();
      return;
    }

    String escapedModel = Profile.escape(model != null ? model : profile.defaultModel);
    long created = System.currentTimeMillis() / 1000;
    int promptTokens = Math.max(1, bytes.length / 4);
    switch (kind) {
      case CHAT -> {
        if (stream) {
          StreamEvents events = new StreamEvents.Chat(profile, exchange.id, created, escapedModel,
              finishLength, usage(json, promptTokens, tokens));
          stream(profile, exchange, response, events, tokens, random);
        } else {
          reply(exchange, response, profile.totalNanos(random, tokens), Payloads.chatCompletion(
              profile, exchange.id, created, escapedModel, tokens, finishLength, promptTokens));
        }
      }
      case COMPLETION -> {
        if (stream) {
          StreamEvents events = new StreamEvents.Completion(profile, exchange.id, created,
              escapedModel, finishLength, usage(json, promptTokens, tokens));
          stream(profile, exchange, response, events, tokens, random);
        } else {
          reply(exchange, response, profile.totalNanos(random, tokens), Payloads.completion(
              profile, exchange.id, created, escapedModel, tokens, finishLength, promptTokens));
        }
      }
      case EMBEDDING -> reply(exchange, response, profile.ttftNanos(random),
          Payloads.embeddings(json.get("input"), escapedModel, promptTokens));
      case TGI -> reply(exchange, response, profile.totalNanos(random, tokens),
          Payloads.generate(profile, tokens));
      case TGI_STREAM -> stream(profile, exchange, response,
          new StreamEvents.Tgi(profile, tokens), tokens, random);
      default -> throw new IllegalStateException("unhandled " + kind);
    }
  }

  private void stream(Profile profile, SimExchange exchange, HttpServerResponse response,
      StreamEvents events, int tokens, ThreadLocalRandom random) {
    new TokenStream(vertx, clock, state, profile, exchange, response, events, tokens)
        .start(profile.ttftNanos(random));
  }

  private void reply(SimExchange exchange, HttpServerResponse response, long delayNanos,
      Buffer body) {
    new DelayedReply(vertx, clock, state, exchange, response, body).start(delayNanos);
  }

  /** {@code max_completion_tokens} over {@code max_tokens}; TGI's {@code max_new_tokens}. */
  private static JsonNode maxTokens(Kind kind, JsonNode json) {
    if (kind == Kind.EMBEDDING) {
      return null;
    }
    if (kind == Kind.TGI || kind == Kind.TGI_STREAM) {
      JsonNode parameters = json.get("parameters");
      return parameters == null ? null : parameters.get("max_new_tokens");
    }
    JsonNode max = json.get("max_completion_tokens");
    return max != null && !max.isNull() ? max : json.get("max_tokens");
  }

  /** The usage chunk's numbers when {@code stream_options.include_usage} is true, else null. */
  private static String usage(JsonNode json, int promptTokens, int completionTokens) {
    JsonNode include = json.path("stream_options").path("include_usage");
    return include.isBoolean() && include.booleanValue()
        ? StreamEvents.usageJson(promptTokens, completionTokens)
        : null;
  }

  private static JsonNode parse(byte[] bytes) {
    if (bytes.length == 0) {
      return null;
    }
    try {
      return MAPPER.readTree(bytes);
    } catch (IOException e) {
      return null;
    }
  }

  private void fail(HttpServerResponse response, SimExchange exchange, SimulatorOptions options) {
    int status = options.failStatus();
    String message = "Simulated failure with status " + status + " from " + options.name() + ".";
    Buffer body;
    if (status == 429) {
      response.putHeader(RETRY_AFTER, ONE);
      body = Payloads.error(message, "rate_limit_exceeded", "rate_limit_exceeded");
    } else if (status >= 500) {
      body = Payloads.error(message, "server_error", null);
    } else {
      body = Payloads.error(message, "invalid_request_error", null);
    }
    state.respond(response, exchange, status, body);
  }

  private void badRequest(HttpServerResponse response, SimExchange exchange, String message) {
    state.respond(response, exchange, 400, Payloads.error(message, "invalid_request_error", null));
  }

  private void notFound(HttpServerResponse response, SimExchange exchange) {
    state.respond(response, exchange, 404, Payloads.error(
        "Invalid URL (" + exchange.method + " " + exchange.path + ")", "invalid_request_error",
        null));
  }
}
