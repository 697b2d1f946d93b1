package io.llmproxy.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.InstanceOfAssertFactories.type;
import static org.awaitility.Awaitility.await;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.errors.NotFoundException;
import com.openai.models.models.Model;
import io.llmproxy.sim.SimulatorOptions;
import io.llmproxy.testing.TestClient.Response;
import io.llmproxy.testing.TestGateway;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code GET /v1/models/{id}} (OpenAI's "retrieve model"): answered from the same catalog as
 * {@code GET /v1/models}, as one entry of that list, for the models the key may use; any other id is
 * a 404 {@code model_not_found}. Ids may contain {@code /}, sent literally or percent-encoded (as
 * the official SDK does). Nothing reaches a backend.
 */
class ModelRetrieveTest {
  private static final String ALL = "sk-llmproxy-retrieve-all-0001";
  private static final String LLAMA_ONLY = "sk-llmproxy-retrieve-llama-0002";
  private static final String YAML = """
      backends:
        - url: "${SIM0}"
          name: a
          models: ["meta-llama/Llama-3-8B", "llama-3-70b*", "qwen*"]
      routing:
        model_mapping: {"llama-3-70b": "llama-3-70b-instruct"}
      auth:
        enabled: true
      api_keys:
        - {key: "%s", name: "all"}
        - {key: "%s", name: "llama only", allowed_models: ["llama-3-70b*"]}
      data_dir: "${DATA}"
      health_check: {enabled: false}
      """.formatted(ALL, LLAMA_ONLY);

  @TempDir
  static Path dataDir;

  private static TestGateway gw;

  @BeforeAll
  static void start() {
    gw = TestGateway.builder(YAML).vars(Map.of("DATA", dataDir.toString())).start(SimulatorOptions.defaults()
        .withName("a").withModels("meta-llama/Llama-3-8B", "llama-3-70b-instruct", "qwen-2-7b"));
    // the names the backend reports come in shortly after the start
    await().atMost(Duration.ofSeconds(5)).until(() -> get("/v1/models", ALL).text().contains("qwen-2-7b"));
  }

  @AfterAll
  static void stop() {
    if (gw != null) {
      gw.close();
    }
  }

  private static Response get(String path, String key) {
    return key == null ? gw.client.get(path) : gw.client.get(path, "authorization", "Bearer " + key);
  }

  /** The entry for {@code id} in the key's {@code GET /v1/models} list. */
  private static JsonObject listed(String id, String key) {
    JsonArray data = get("/v1/models", key).json().getJsonArray("data");
    for (int i = 0; i < data.size(); i++) {
      if (data.getJsonObject(i).getString("id").equals(id)) {
        return data.getJsonObject(i);
      }
    }
    throw new AssertionError(id + " is not in the list");
  }

  private static void assertNotFound(Response r, String id) {
    assertThat(r.status()).as(r.text()).isEqualTo(404);
    assertThat(r.header("content-type")).startsWith("application/json");
    JsonObject error = r.json().getJsonObject("error");
    assertThat(error.getString("code")).isEqualTo("model_not_found");
    assertThat(error.getString("type")).isEqualTo("invalid_request_error");
    assertThat(error.getString("param")).isEqualTo("model");
    assertThat(error.getString("message")).contains(id);
  }

  private static int backendRequests() {
    return gw.sim(0).requests().size();
  }

  @Test
  void aModelIsTheSameObjectAsItsEntryInTheList() {
    int before = backendRequests();
    for (String id : new String[] {"llama-3-70b", "llama-3-70b-instruct", "qwen-2-7b", "meta-llama/Llama-3-8B"}) {
      Response r = get("/v1/models/" + id, ALL);

      assertThat(r.status()).as(id + ": " + r.text()).isEqualTo(200);
      assertThat(r.header("content-type")).startsWith("application/json");
      assertThat(r.json()).as(id).isEqualTo(listed(id, ALL));
      assertThat(r.json().getString("object")).isEqualTo("model");
    }
    assertThat(backendRequests()).as("answered by the gateway").isEqualTo(before);
  }

  @Test
  void anIdWithAnEncodedSlashIsFound() {
    Response r = get("/v1/models/meta-llama%2FLlama-3-8B", ALL);

    assertThat(r.status()).as(r.text()).isEqualTo(200);
    assertThat(r.json().getString("id")).isEqualTo("meta-llama/Llama-3-8B");
    assertThat(get("/v1/models/llama-3-70b%2Dinstruct", ALL).json().getString("id")).isEqualTo("llama-3-70b-instruct");

    Response bad = get("/v1/models/meta-llama%2", ALL);
    assertThat(bad.status()).as(bad.text()).isEqualTo(400);
    assertThat(bad.json().getJsonObject("error").getString("code")).isEqualTo("invalid_request_error");
  }

  @Test
  void anUnknownModelIs404ModelNotFound() {
    int before = backendRequests();
    assertNotFound(get("/v1/models/no-such-model", ALL), "no-such-model");
    assertNotFound(get("/v1/models/meta-llama/no-such-model", ALL), "meta-llama/no-such-model");
    // a glob a backend serves is not a model of the list: only names are
    assertNotFound(get("/v1/models/qwen-unknown", ALL), "qwen-unknown");
    assertThat(backendRequests()).isEqualTo(before);
  }

  @Test
  void aKeySeesOnlyItsModels() {
    Response allowed = get("/v1/models/llama-3-70b", LLAMA_ONLY);
    assertThat(allowed.status()).as(allowed.text()).isEqualTo(200);
    assertThat(allowed.json()).isEqualTo(listed("llama-3-70b", LLAMA_ONLY));
    // a model the key may not use is not there for it, as in its list
    assertNotFound(get("/v1/models/qwen-2-7b", LLAMA_ONLY), "qwen-2-7b");
    assertNotFound(get("/v1/models/meta-llama%2FLlama-3-8B", LLAMA_ONLY), "meta-llama/Llama-3-8B");
  }

  @Test
  void theKeyIsChecked() {
    Response r = get("/v1/models/llama-3-70b", null);
    assertThat(r.status()).isEqualTo(401);
    assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("invalid_api_key");
  }

  @Test
  void onlyGetIsAllowed() {
    int before = backendRequests();
    Response r = gw.client.send(HttpMethod.POST, "/v1/models/llama-3-70b", Buffer.buffer("{}"),
        "authorization", "Bearer " + ALL, "content-type", "application/json");

    assertThat(r.status()).as(r.text()).isEqualTo(405);
    assertThat(r.header("allow")).isEqualTo("GET");
    assertThat(r.json().getJsonObject("error").getString("code")).isEqualTo("method_not_allowed");
    assertThat(backendRequests()).isEqualTo(before);
  }

  @Test
  void theOpenAiSdkRetrievesModelsAndGetsNotFound() {
    OpenAIClient sdk = OpenAIOkHttpClient.builder().baseUrl(gw.url() + "/v1").apiKey(ALL).maxRetries(0)
        .timeout(Duration.ofSeconds(10)).build();
    try {
      Model m = sdk.models().retrieve("meta-llama/Llama-3-8B");
      assertThat(m.id()).isEqualTo("meta-llama/Llama-3-8B");
      assertThat(m.ownedBy()).isEqualTo("llmproxy");
      assertThat(sdk.models().retrieve("llama-3-70b").id()).isEqualTo("llama-3-70b");

      assertThatThrownBy(() -> sdk.models().retrieve("no-such-model"))
          .asInstanceOf(type(NotFoundException.class))
          .satisfies(e -> assertThat(e.statusCode()).isEqualTo(404));
    } finally {
      sdk.close();
    }
  }
}
