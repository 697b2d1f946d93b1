package io.llmproxy.server;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Router;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.RequestOptions;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * What {@code GET /v1/models} lists and {@code GET /v1/models/{id}} finds (SPEC §4): the mapped
 * names, the literal names in backends' {@code models}, and the names the backends report on their
 * own {@code /v1/models} (only those the backend's globs let it serve). Backends are asked at start
 * and then every {@code refresh}; the endpoints answer from this cache and never wait for a backend.
 */
final class ModelCatalog {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final JsonFactory FACTORY = new JsonFactory();

  private final Vertx vertx;
  private final HttpClientAgent http;
  /** The router of the config now in force. */
  private final Supplier<Router> router;
  private final Duration refresh;
  private final Duration timeout;
  private final long created = System.currentTimeMillis() / 1000;
  private final Map<String, List<String>> reported = new ConcurrentHashMap<>();
  private long timer = -1;
  private volatile boolean stopped;

  ModelCatalog(Vertx vertx, HttpClientAgent http, Supplier<Router> router, Duration refresh, Duration timeout) {
    this.vertx = vertx;
    this.http = http;
    this.router = router;
    this.refresh = refresh;
    this.timeout = timeout;
  }

  void start() {
    refreshAll();
  }

  void stop() {
    stopped = true;
    if (timer >= 0) {
      vertx.cancelTimer(timer);
    }
  }

  private void refreshAll() {
    if (stopped) {
      return;
    }
    fetchAll();
    timer = vertx.setTimer(refresh.toMillis(), id -> refreshAll());
  }

  /**
   * After a config reload: the backends' lists are asked for again at once (a backend's URL, key
   * or globs may have changed), and those of backends no longer configured are forgotten.
   */
  void reloaded() {
    if (stopped) {
      return;
    }
    Set<String> names = new HashSet<>();
    router.get().backends().forEach(b -> names.add(b.name()));
    reported.keySet().retainAll(names);
    fetchAll();
  }

  private void fetchAll() {
    for (Backend b : router.get().backends()) {
      fetch(b);
    }
  }

  private void fetch(Backend b) {
    RequestOptions options = b.probe("/v1/models", timeout.toMillis());
    // The body is asked for inside the send callback, before the response can end unobserved.
    http.request(options)
        .compose(req -> req.send().compose(resp -> resp.statusCode() == 200
            ? resp.body() : Future.<Buffer>failedFuture("HTTP " + resp.statusCode())))
        .onSuccess(body -> {
          if (router.get().backend(b.name()) == b) { // else a reload came since: its own fetch counts
            reported.put(b.name(), parse(body, b));
          }
        });
  }

  private static List<String> parse(Buffer body, Backend b) {
    try {
      JsonNode data = JSON.readTree(body.getBytes()).path("data");
      Set<String> names = new LinkedHashSet<>();
      for (JsonNode m : data) {
        String id = m.path("id").asText(null);
        if (id != null && b.serves(id)) {
          names.add(id);
        }
      }
      return List.copyOf(names);
    } catch (IOException e) {
      return List.of();
    }
  }

  /** The names, in order: mapping keys, literal config names, then reported names by backend order. */
  Set<String> names() {
    Router r = router.get();
    Set<String> names = new LinkedHashSet<>(r.configuredModelNames());
    for (Backend b : r.backends()) {
      names.addAll(reported.getOrDefault(b.name(), List.of()));
    }
    return names;
  }

  /** OpenAI's list format. */
  Buffer listJson() {
    return listJson(name -> true);
  }

  /** OpenAI's list format, with only the names {@code allowed} accepts (a key's models). */
  Buffer listJson(java.util.function.Predicate<String> allowed) {
    StringWriter w = new StringWriter();
    try (JsonGenerator g = FACTORY.createGenerator(w)) {
      g.writeStartObject();
      g.writeStringField("object", "list");
      g.writeArrayFieldStart("data");
      for (String id : names()) {
        if (allowed.test(id)) {
          writeModel(g, id);
        }
      }
      g.writeEndArray();
      g.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return Buffer.buffer(w.toString());
  }

  /**
   * One model as {@code GET /v1/models/{id}} answers it (the same object as its entry in the list),
   * or null when {@code id} is not one of the names or {@code allowed} refuses it.
   */
  Buffer modelJson(String id, java.util.function.Predicate<String> allowed) {
    if (!allowed.test(id) || !names().contains(id)) {
      return null;
    }
    StringWriter w = new StringWriter();
    try (JsonGenerator g = FACTORY.createGenerator(w)) {
      writeModel(g, id);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return Buffer.buffer(w.toString());
  }

  private void writeModel(JsonGenerator g, String id) throws IOException {
    g.writeStartObject();
    g.writeStringField("id", id);
    g.writeStringField("object", "model");
    g.writeNumberField("created", created);
    g.writeStringField("owned_by", "llmproxy");
    g.writeEndObject();
  }
}
