package io.llmproxy.config;

import static io.llmproxy.config.TestConfigs.ONE_BACKEND;
import static io.llmproxy.config.TestConfigs.problems;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Every kind of problem names its path; all problems come together, in file order. */
class ConfigErrorsTest {

  @Test
  void unknownTopLevelKeyListsTheKnownOnes() {
    assertThat(problems(ONE_BACKEND + "colour: blue\n")).singleElement().satisfies(p -> assertThat(p)
        .startsWith("colour: unknown key (expected one of: listen, backends, load_balance_strategy, routing,")
        .contains("drain_timeout"));
  }

  @Test
  void unknownNestedKeySuggestsTheNearestKnownKey() {
    assertThat(problems(ONE_BACKEND + "routing:\n  retry:\n    max_retry: 3\n"))
        .containsExactly("routing.retry.max_retry: unknown key; did you mean 'max_retries'?");
  }

  @Test
  void unknownKeyInsideABackendNamesItsIndex() {
    assertThat(problems("""
        backends:
          - url: http://a:1
          - url: http://b:1
            wieght: 5
        """)).containsExactly("backends[1].wieght: unknown key; did you mean 'weight'?");
  }

  @Test
  void dashesInKeysAndMisplacedRoutingKeysGetSuggestions() {
    assertThat(problems(ONE_BACKEND + """
        retry: {enabled: false}
        strategy: random
        logging: {access-log: false}
        """)).containsExactly(
        "retry: unknown key; did you mean 'routing.retry'?",
        "strategy: unknown key; did you mean 'load_balance_strategy'?",
        "logging.access-log: unknown key; did you mean 'access_log'?");
  }

  @Test
  void badDurations() {
    assertThat(problems(ONE_BACKEND + """
        routing:
          retry: {initial_wait: fast}
          timeouts: {connect: 5, idle: -1s, total: 1d}
        health_check: {interval: 0}
        drain_timeout: 1m30
        """)).containsExactly(
        "routing.retry.initial_wait: 'fast' is not a duration; write for example 500ms, 2s, 1.5s or 1m30s "
            + "(units: ns, us, ms, s, m, h)",
        "routing.timeouts.connect: '5' has no unit; add one, for example 5s or 5ms (units: ns, us, ms, s, m, h)",
        "routing.timeouts.idle: '-1s' is negative; a duration must be 0 or more",
        "routing.timeouts.total: '1d' has an unknown unit 'd' (units: ns, us, ms, s, m, h); write days in hours, "
            + "for example 24h",
        "health_check.interval: must be more than 0",
        "drain_timeout: '1m30' ends in a number without a unit (units: ns, us, ms, s, m, h)");
  }

  @Test
  void badSize() {
    assertThat(problems(ONE_BACKEND + "limits: {max_body_size: 32 megabytes}\n")).containsExactly(
        "limits.max_body_size: '32 megabytes' is not a size; write for example 32MiB, 512KiB, 10MB or 1048576 "
            + "(units: B, KB, MB, GB, KiB, MiB, GiB)");
    assertThat(problems(ONE_BACKEND + "limits: {max_body_size: 0}\n"))
        .containsExactly("limits.max_body_size: must be more than 0 bytes");
    assertThat(problems(ONE_BACKEND + "limits: {max_body_size: 3GiB}\n")).containsExactly(
        "limits.max_body_size: must be at most 1GiB: bodies are held in memory so they can be retried");
  }

  @Test
  void badEnumListsTheAllowedValues() {
    assertThat(problems(ONE_BACKEND + "load_balance_strategy: fastest\n")).containsExactly(
        "load_balance_strategy: unknown value 'fastest'; expected one of: round_robin, weighted_round_robin, "
            + "least_connections, latency_based, random");
    assertThat(problems(ONE_BACKEND + "load_balance_strategy: least_connection\n")).singleElement()
        .satisfies(p -> assertThat(p).endsWith("(did you mean 'least_connections'?)"));
    assertThat(problems(ONE_BACKEND + "logging: {level: verbose}\n"))
        .containsExactly("logging.level: unknown level 'verbose'; expected one of: trace, debug, info, warn, error");
  }

  @Test
  void badUrls() {
    assertThat(problems("""
        backends:
          - url: gpu-1:8000
          - url: ftp://gpu-2:8000
          - url: http://gpu-3:8000/v1?x=1
          - url: http://gpu-4:8000/#top
          - url: http://user:pw@gpu-5:8000
          - url: http://gpu_6:8000
          - url: "http://gpu 7:8000"
          - weight: 3
          - url: ""
          - url: http://gpu-9:99999
          - url: http://gpu-10:0
        """)).containsExactly(
        "backends[0].url: must be an absolute http:// or https:// URL, like http://gpu-1:8000",
        "backends[1].url: must be an absolute http:// or https:// URL, like http://gpu-1:8000",
        "backends[2].url: must not have a query (?...)",
        "backends[3].url: must not have a fragment (#...)",
        "backends[4].url: must not hold user:password@; send credentials with api_key or headers instead",
        "backends[5].url: 'gpu_6:8000' is not a valid host[:port] (a host name has letters, digits, - and . only)",
        "backends[6].url: not a valid URL: Illegal character in authority at character 11",
        "backends[7].url: required, for example url: \"http://gpu-1:8000\"",
        "backends[8].url: required; must not be empty",
        "backends[9].url: port 99999 is out of range (1 to 65535)",
        "backends[10].url: port 0 is out of range (1 to 65535)");
  }

  @Test
  void backendsAreRequired() {
    assertThat(problems("listen: \":8080\"\n")).containsExactly(
        "backends: at least one backend is required, for example: backends: [{url: \"http://localhost:8000\"}]");
    assertThat(problems("backends: []\n")).containsExactly("backends: at least one backend is required");
    assertThat(problems("backends: {url: http://a:1}\n")).containsExactly("backends: expected a list, got a mapping");
  }

  @Test
  void listItemsThatAreNotMappingsGetOneProblemEach() {
    assertThat(problems("""
        backends:
          - http://a:1
          -
          - url: http://b:1
        routing:
          fallback: [b:1]
        api_keys: [sk-plain]
        """)).containsExactly(
        "backends[0]: expected a mapping, like {url: \"http://gpu-1:8000\"}",
        "backends[1]: expected a mapping, like {url: \"http://gpu-1:8000\"}",
        "routing.fallback[0]: expected a mapping, like {primary: gpu-1, fallback: [gpu-2]}",
        "api_keys[0]: expected a mapping, like {key: \"${TEAM_KEY}\", name: team}");
  }

  @Test
  void duplicateBackendNames() {
    assertThat(problems("""
        backends:
          - url: http://a:8000
          - url: http://b:8000
            name: gpu
          - url: http://A:8000/
          - url: http://c:8000
            name: gpu
        """)).containsExactly(
        "backends[2].name: duplicate name 'a:8000' (backends[0] has it too); it comes from host:port, so give "
            + "these backends distinct names",
        "backends[3].name: duplicate name 'gpu' (backends[1] has it too)");
  }

  @Test
  void backendValueRanges() {
    assertThat(problems("""
        backends:
          - url: http://a:1
            weight: 0
            max_concurrent: -1
            models: ["", ok]
            headers: {"bad header": x, Content-Length: "5", host: other, X-Team: ml}
        """)).containsExactly(
        "backends[0].weight: must be at least 1, got 0",
        "backends[0].max_concurrent: must be at least 0, got -1",
        "backends[0].models[0]: must not be empty",
        "backends[0].headers[\"bad header\"]: not a valid HTTP header name",
        "backends[0].headers.Content-Length: is set by the gateway itself (it frames the request or names the hop)",
        "backends[0].headers.host: is set by the gateway itself (it frames the request or names the hop)");
  }

  @Test
  void duplicateYamlKeyNamesPathAndLines() {
    assertThat(problems("""
        backends:
          - url: http://a:1
        routing:
          retry:
            max_retries: 1
            max_retries: 2
        listen: ":1"
        listen: ":2"
        """)).containsExactly(
        "routing.retry.max_retries: duplicate key (first at line 5, again at line 6)",
        "listen: duplicate key (first at line 7, again at line 8)");
  }

  @Test
  void badAddressesAndCidrs() {
    assertThat(problems(ONE_BACKEND + """
        auth:
          trusted_proxies: ["10.0.0.0/8", "fd00::/8", "proxy.internal", "10.0.0.0/33", "10.1.2"]
        api_keys:
          - key: k1
            allowed_ips: ["::1", "2001:db8::/129", "300.0.0.1", "::ffff:10.0.0.1"]
        """)).containsExactly(
        "auth.trusted_proxies[2]: 'proxy.internal' is not an IP address or CIDR block (host names are not allowed); "
            + "write for example 10.0.1.0/24, 192.168.1.7 or fd00::/8",
        "auth.trusted_proxies[3]: '10.0.0.0/33' has a bad prefix length; it must be 0..32",
        "auth.trusted_proxies[4]: '10.1.2' is not an IP address or CIDR block; write for example 10.0.1.0/24, "
            + "192.168.1.7 or fd00::/8",
        "api_keys[0].allowed_ips[1]: '2001:db8::/129' has a bad prefix length; it must be 0..128",
        "api_keys[0].allowed_ips[2]: '300.0.0.1' is not an IP address or CIDR block; write for example "
            + "10.0.1.0/24, 192.168.1.7 or fd00::/8");
  }

  @Test
  void fallbackMustReferenceExistingBackends() {
    assertThat(problems("""
        backends:
          - url: http://gpu-1:8000
          - url: http://gpu-2:8000
            name: two
        routing:
          fallback:
            - primary: http://gpu-9:8000
              fallback: [two, http://gpu-1:8000, nobody]
            - primary: two
              fallback: [two]
            - primary: two
        """)).containsExactly(
        "routing.fallback[0].primary: 'http://gpu-9:8000' is neither the name nor the URL of a backend "
            + "(backends: gpu-1:8000, two)",
        "routing.fallback[0].fallback[2]: 'nobody' is neither the name nor the URL of a backend "
            + "(backends: gpu-1:8000, two)",
        "routing.fallback[1].fallback[0]: is the primary itself (two)",
        "routing.fallback[2].fallback: at least one fallback backend is required");
  }

  @Test
  void fallbackUrlsCompareNormalized() throws ConfigException {
    GatewayConfig config = TestConfigs.parse("""
        backends:
          - url: http://GPU-1:80/
          - url: https://gpu-2.example/v1
            name: two
        routing:
          fallback:
            - primary: HTTP://gpu-1
              fallback: ["https://GPU-2.example:443/v1/"]
        """);
    assertThat(config.routing().fallback().get(0).primary()).isEqualTo("gpu-1:80");
    assertThat(config.routing().fallback().get(0).fallback()).containsExactly("two");
  }

  @Test
  void fallbackToABackendThatHadItsOwnProblemIsNotReportedTwice() {
    assertThat(problems("""
        backends:
          - url: http://a:1
          - url: http://b:1
            weight: x
            name: b
          - url: "http://bad host:1"
        routing:
          fallback:
            - primary: a:1
              fallback: [b, "http://bad host:1"]
        """)).containsExactly(
        "backends[1].weight: expected a whole number, got 'x'",
        "backends[2].url: not a valid URL: Illegal character in authority at character 11");
  }

  @Test
  void rangesAcrossSections() {
    assertThat(problems(ONE_BACKEND + """
        routing:
          retry: {initial_wait: 20s}
          hedge: {min_threshold: 2s, max_threshold: 1s, max_parallel: 0, budget_percent: 150, threshold: p100}
        health_check: {path: health, healthy_threshold: 0}
        outlier_detection: {failure_rate: 1.5, base_cooldown: 10s, max_cooldown: 5s}
        rate_limit: {global: {requests_per_second: 10, burst_size: 0}, per_key: {tokens_per_minute: -5}}
        usage_hook: {enabled: true}
        metrics: {path: metrics}
        upstream: {max_connections_per_backend: 0, max_wait_queue: -2}
        """)).containsExactly(
        "routing.retry.initial_wait: must not exceed max_wait (10s, the default), got 20s",
        "routing.hedge.threshold: percentile p100 must be above p0 and below p100",
        "routing.hedge.min_threshold: must not exceed max_threshold (1s), got 2s",
        "routing.hedge.max_parallel: must be at least 1, got 0",
        "routing.hedge.budget_percent: must be at most 100, got 150.0",
        "health_check.path: must start with /, like /health",
        "health_check.healthy_threshold: must be at least 1, got 0",
        "outlier_detection.failure_rate: must be above 0 and at most 1 (a fraction: 0.5 is 50%), got 1.5",
        "outlier_detection.max_cooldown: must be at least base_cooldown (10s), got 5s",
        "rate_limit.global.burst_size: must be at least 1 when requests_per_second is set (leave it out for 10)",
        "rate_limit.per_key.tokens_per_minute: must be at least 0, got -5",
        "usage_hook.url: required when usage_hook.enabled is true",
        "metrics.path: must start with /, like /metrics",
        "upstream.max_connections_per_backend: must be at least 1, got 0",
        "upstream.max_wait_queue: must be at least -1, got -2");
  }

  @Test
  void wrongShapes() {
    assertThat(problems(ONE_BACKEND + """
        routing: [retry]
        health_check: {interval: {seconds: 5}}
        api_keys: {key: k}
        """)).containsExactly(
        "routing: expected a mapping (key: value lines), got a list",
        "health_check.interval: expected a single value, got a mapping",
        "api_keys: expected a list, got a mapping");
  }

  @Test
  void manyProblemsComeTogetherInFileOrder() {
    List<String> problems = problems("""
        listen: "localhost"
        backends:
          - url: http://a:1
            weight: heavy
          - url: nope
        load_balance_strategy: fastest
        routing:
          retry: {max_retry: 1}
        limits: {max_body_size: big}
        bogus: 1
        """);
    assertThat(problems).hasSize(7);
    assertThat(problems).extracting(p -> p.substring(0, p.indexOf(':'))).containsExactly(
        "listen", "backends[0].weight", "backends[1].url", "load_balance_strategy", "routing.retry.max_retry",
        "limits.max_body_size", "bogus");
  }

  @Test
  void messageJoinsProblemsOnePerLine() {
    ConfigException e = org.assertj.core.api.Assertions.catchThrowableOfType(ConfigException.class,
        () -> TestConfigs.parse("backends: []\nx: 1\n"));
    assertThat(e.getMessage()).isEqualTo(String.join("\n", e.problems())).contains("\n");
  }

  @Test
  void secretsNeverAppearInProblems() {
    String yaml = """
        backends:
          - url: http://a:1
            api_key: sk-backend-secret
            headers: {X-Token: "line\\nbreak-secret"}
        admin: {token: [admin-secret]}
        auth: {redis: {password: {p: redis-secret}}}
        api_keys:
          - key: sk-duplicate-secret
          - key: sk-duplicate-secret
            kye: x
          - key: {nested: sk-nested-secret}
        """;
    List<String> problems = problems(yaml);
    assertThat(problems).contains(
        "api_keys[1].key: the same key as api_keys[0]; each key must be unique",
        "api_keys[1].kye: unknown key; did you mean 'key'?");
    assertThat(String.join("\n", problems)).doesNotContain("secret");
  }

  @Test
  void yamlSyntaxErrorsHaveLineAndColumnButNoSourceSnippet() {
    assertThat(problems("backends:\n  - url: http://a:1\nadmin:\n  token: \"sk-unterminated-secret\n"))
        .singleElement().satisfies(p -> assertThat(p)
            .startsWith("line 5, column 1: YAML syntax error: found unexpected end of stream "
                + "(while scanning a quoted scalar at line 4, column 10)")
            .doesNotContain("secret"));
    assertThat(problems("backends: [{url: http://a:1}\nlisten: 1\n")).singleElement()
        .satisfies(p -> assertThat(p).startsWith("line 2, column 1: YAML syntax error: expected ',' or ']'"));
    assertThat(problems("a:\tb\n")).singleElement()
        .satisfies(p -> assertThat(p).startsWith("line 1, column 3: YAML syntax error: "));
  }

  @Test
  void emptyOrNonMappingFiles() {
    String empty = "the config is empty; it needs at least: backends: [{url: \"http://localhost:8000\"}]";
    assertThat(problems("")).containsExactly(empty);
    assertThat(problems("# only a comment\n")).containsExactly(empty);
    assertThat(problems("~\n")).containsExactly(empty);
    assertThat(problems("- url: http://a:1\n"))
        .containsExactly("the top level must be a mapping of keys (listen:, backends:, ...), got a list");
    assertThat(problems("hello\n"))
        .containsExactly("the top level must be a mapping of keys (listen:, backends:, ...), got a single value");
  }

  @Test
  void aSecondDocumentIsAnError() {
    assertThat(problems(ONE_BACKEND + "---\nlisten: \":9\"\n")).containsExactly(
        "line 3: a second YAML document (after ---) is not allowed; a config file holds exactly one");
  }

  @Test
  void badListenAddresses() {
    assertThat(problems(ONE_BACKEND + "listen: \"::1:8080\"\n"))
        .containsExactly("listen: '::1:8080': put an IPv6 address in brackets, like [::1]:8080");
    assertThat(problems(ONE_BACKEND + "listen: \":70000\"\n"))
        .containsExactly("listen: port 70000 is out of range (0..65535)");
    assertThat(problems(ONE_BACKEND + "listen: \"localhost\"\n")).containsExactly("listen: 'localhost' is not "
        + "host:port; write for example \":8080\", \"127.0.0.1:8080\", \"[::1]:8080\" or \"8080\"");
  }

  @Test
  void badApiKeyFields() {
    assertThat(problems(ONE_BACKEND + """
        api_keys:
          - name: no key here
          - key: k2
            status: paused
            quota_reset_period: yearly
            expires_at: 2026-12-31T23:59:59
            total_quota: -1
          - key: k3
            expires_at: tomorrow
            rate_limit: {requests_per_minute: many}
        """)).containsExactly(
        "api_keys[0].key: required",
        "api_keys[1].status: unknown value 'paused'; expected one of: active, disabled",
        "api_keys[1].quota_reset_period: unknown value 'yearly'; expected one of: daily, weekly, monthly, never",
        "api_keys[1].expires_at: '2026-12-31T23:59:59' has no time zone; add one, for example 2026-12-31T23:59:59Z "
            + "for UTC",
        "api_keys[1].total_quota: must be at least 0, got -1",
        "api_keys[2].expires_at: 'tomorrow' is not a date-time; write for example 2026-12-31T23:59:59Z, or "
            + "2026-12-31 for the end of that day in UTC",
        "api_keys[2].rate_limit.requests_per_minute: expected a whole number, got 'many'");
  }

  @Test
  void problemsSayWhichVariableWasNotSet() {
    assertThat(problems("backends:\n  - url: \"${BACKEND_URL}\"\n", Map.of()))
        .containsExactly("backends[0].url: required; must not be empty (environment variable BACKEND_URL is not set)");
  }

  /**
   * Secrets as env vars give them: a value read from a mounted file ends in a line break, which is
   * dropped; one with a control character inside is refused by path, the value never shown (it once
   * passed validation and then failed the start, or a reload half-way, printing the secret).
   */
  @Test
  void secretsLoseTheirSurroundingWhitespaceAndOneWithAControlCharacterIsRefusedUnshown() throws Exception {
    String yaml = """
        backends:
          - url: "http://localhost:8000"
            api_key: "${PK}"
            headers: {X-Team: "${TEAM}"}
        admin: {token: "${TOK}"}
        auth: {enabled: true}
        api_keys:
          - {key: "${KEY}", name: team}
        """;
    GatewayConfig c = TestConfigs.parse(yaml, Map.of("PK", "sk-provider-secret\n", "TEAM", " blue \n",
        "TOK", "admintoken-abcdef\r\n", "KEY", "sk-llmproxy-devkey-000001\n"));
    assertThat(c.backends().get(0).apiKey()).isEqualTo("sk-provider-secret");
    assertThat(c.backends().get(0).headers()).containsEntry("X-Team", "blue");
    assertThat(c.admin().token()).isEqualTo("admintoken-abcdef");
    assertThat(c.apiKeys().get(0).key()).isEqualTo("sk-llmproxy-devkey-000001");

    List<String> problems = problems(yaml, Map.of("PK", "sk-provider-SECRET\nxyz", "TEAM", "a\u0001b",
        "TOK", "admin\ttoken-abcdef", "KEY", "sk-llmproxy-dev\u0000key-01"));
    assertThat(problems).containsExactly(
        "backends[0].api_key: contains a control character (a line break inside it, say); the value is not shown",
        "backends[0].headers.X-Team: a header value must not contain line breaks, other control characters or"
            + " characters beyond Latin-1",
        "admin.token: contains a control character (a line break inside it, say); the value is not shown",
        "api_keys[0].key: contains a control character (a line break inside it, say); the value is not shown");
    assertThat(String.join("\n", problems)).doesNotContain("SECRET").doesNotContain("token-abcdef");
  }
}
