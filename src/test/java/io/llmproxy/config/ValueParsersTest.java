package io.llmproxy.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.llmproxy.config.GatewayConfig.ListenAddress;
import io.llmproxy.config.RoutingConfig.HedgeThreshold;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class ValueParsersTest {

  @ParameterizedTest
  @CsvSource({
      "0, 0",
      "0s, 0",
      "1ns, 1",
      "1us, 1000",
      "1µs, 1000",
      "1μs, 1000",
      "500ms, 500000000",
      "1s, 1000000000",
      "1.5s, 1500000000",
      ".5s, 500000000",
      "2m, 120000000000",
      "1h, 3600000000000",
      "1m30s, 90000000000",
      "1h2m3s4ms, 3723004000000",
      "+15m, 900000000000",
  })
  void goDurations(String text, long nanos) {
    assertThat(ValueParsers.duration(text)).isEqualTo(Duration.ofNanos(nanos));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "5", "1.5", "-1s", "1d", "1S", "s", "1.2.3s", "1m30", "fast", "1 s"})
  void badDurations(String text) {
    assertThatThrownBy(() -> ValueParsers.duration(text)).isInstanceOf(IllegalArgumentException.class);
  }

  @ParameterizedTest
  @CsvSource({"0, 0s", "500, 500ms", "1500, 1.5s", "90000, 1m30s", "900000, 15m", "3600000, 1h", "20, 20ms"})
  void formatsDurationsBack(long millis, String text) {
    assertThat(ValueParsers.format(Duration.ofMillis(millis))).isEqualTo(text);
    assertThat(ValueParsers.duration(text)).isEqualTo(Duration.ofMillis(millis));
  }

  @ParameterizedTest
  @CsvSource({
      "32MiB, 33554432",
      "512KiB, 524288",
      "1GiB, 1073741824",
      "10MB, 10000000",
      "1KB, 1000",
      "1GB, 1000000000",
      "100B, 100",
      "4096, 4096",
      "1.5KiB, 1536",
      "32mib, 33554432",
  })
  void byteSizes(String text, long bytes) {
    assertThat(ValueParsers.byteSize(text)).isEqualTo(bytes);
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "MiB", "32M", "32Mi", "-1", "1.5", "1.5B", "lots", "32 MiBs"})
  void badByteSizes(String text) {
    assertThatThrownBy(() -> ValueParsers.byteSize(text)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void listenAddresses() {
    assertThat(ValueParsers.listen(":8080")).isEqualTo(new ListenAddress("0.0.0.0", 8080));
    assertThat(ValueParsers.listen("8080")).isEqualTo(new ListenAddress("0.0.0.0", 8080));
    assertThat(ValueParsers.listen("127.0.0.1:9000")).isEqualTo(new ListenAddress("127.0.0.1", 9000));
    assertThat(ValueParsers.listen("[::1]:8080")).isEqualTo(new ListenAddress("::1", 8080));
    assertThat(ValueParsers.listen("[::1]:8080").toString()).isEqualTo("[::1]:8080");
    assertThat(ValueParsers.listen("localhost:0")).isEqualTo(new ListenAddress("localhost", 0));
    assertThat(ValueParsers.listen(":65535").port()).isEqualTo(65535);
    for (String bad : new String[] {"", ":", ":65536", "::1:80", "[::1]", "[zz]:80", "host", "a b:80", ":-1",
        "*:80"}) {
      assertThatThrownBy(() -> ValueParsers.listen(bad)).as(bad).isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void listenAcceptsAnUnquotedPort() throws ConfigException {
    assertThat(TestConfigs.parse(TestConfigs.ONE_BACKEND + "listen: 9000\n").listen())
        .isEqualTo(new ListenAddress("0.0.0.0", 9000));
  }

  @Test
  void hedgeThresholds() throws ConfigException {
    assertThat(threshold("p95")).isEqualTo(new HedgeThreshold(95.0, null));
    assertThat(threshold("p99.9")).isEqualTo(new HedgeThreshold(99.9, null));
    assertThat(threshold("P50")).isEqualTo(new HedgeThreshold(50.0, null));
    assertThat(threshold("800ms")).isEqualTo(new HedgeThreshold(null, Duration.ofMillis(800)));
    assertThat(TestConfigs.problems(TestConfigs.ONE_BACKEND + "routing: {hedge: {threshold: 95}}\n"))
        .containsExactly("routing.hedge.threshold: '95' is neither a percentile (write p95) nor a duration "
            + "(write 95ms)");
    assertThat(TestConfigs.problems(TestConfigs.ONE_BACKEND + "routing: {hedge: {threshold: p0}}\n"))
        .containsExactly("routing.hedge.threshold: percentile p0 must be above p0 and below p100");
    assertThat(TestConfigs.problems(TestConfigs.ONE_BACKEND + "routing: {hedge: {threshold: slow}}\n"))
        .containsExactly("routing.hedge.threshold: expected a percentile such as p95 or p99.9, or a duration "
            + "such as 800ms; got 'slow'");
  }

  private static HedgeThreshold threshold(String text) throws ConfigException {
    return TestConfigs.parse(TestConfigs.ONE_BACKEND + "routing: {hedge: {threshold: " + text + "}}\n")
        .routing().hedge().threshold();
  }

  @Test
  void expiry() {
    assertThat(ValueParsers.expiry("2026-12-31T23:59:59Z")).isEqualTo(Instant.parse("2026-12-31T23:59:59Z"));
    assertThat(ValueParsers.expiry("2026-12-31T23:59:59+08:00")).isEqualTo(Instant.parse("2026-12-31T15:59:59Z"));
    assertThat(ValueParsers.expiry("2026-12-31")).isEqualTo(Instant.parse("2026-12-31T23:59:59.999999999Z"));
    assertThatThrownBy(() -> ValueParsers.expiry("2026-12-31T23:59:59")).hasMessageContaining("no time zone");
    assertThatThrownBy(() -> ValueParsers.expiry("2026-13-01")).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void expiryInAConfig() throws ConfigException {
    GatewayConfig config = TestConfigs.parse(TestConfigs.ONE_BACKEND + """
        api_keys:
          - {key: a, expires_at: 2026-12-31}
          - {key: b, expires_at: "2026-12-31T23:59:59Z"}
        """);
    assertThat(config.apiKeys()).extracting(ApiKeyConfig::expiresAt).containsExactly(
        Instant.parse("2026-12-31T23:59:59.999999999Z"), Instant.parse("2026-12-31T23:59:59Z"));
  }

  @Test
  void enumsTakeAnyCaseAndDashes() throws ConfigException {
    for (String written : new String[] {"weighted-round-robin", "WEIGHTED_ROUND_ROBIN", "Weighted_Round-Robin"}) {
      assertThat(TestConfigs.parse(TestConfigs.ONE_BACKEND + "load_balance_strategy: " + written + "\n").strategy())
          .isEqualTo(Strategy.WEIGHTED_ROUND_ROBIN);
    }
    assertThat(TestConfigs.parse(TestConfigs.ONE_BACKEND + "routing: {hedge: {first_token: first-byte}}\n")
        .routing().hedge().firstToken()).isEqualTo(RoutingConfig.FirstTokenMode.FIRST_BYTE);
  }

  @Test
  void integersAndBooleans() {
    assertThat(ValueParsers.integer("1_000_000")).isEqualTo(1_000_000);
    assertThat(ValueParsers.integer("010")).isEqualTo(10);
    assertThat(ValueParsers.integer("10.0")).isEqualTo(10);
    assertThatThrownBy(() -> ValueParsers.integer("1.5")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> ValueParsers.integer("0x10")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> ValueParsers.integer("99999999999999999999")).hasMessageContaining("too large");
    assertThat(ValueParsers.bool("True")).isTrue();
    assertThat(ValueParsers.bool("no")).isFalse();
    assertThatThrownBy(() -> ValueParsers.bool("1")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> ValueParsers.decimal("NaN")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> ValueParsers.decimal("1d")).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void httpUrls() {
    assertThat(ValueParsers.httpUrl("HTTP://GPU-1:8000/v1", false)).isEqualTo(URI.create("http://gpu-1:8000/v1"));
    assertThat(ValueParsers.httpUrl("https://[::1]:8443/", false)).isEqualTo(URI.create("https://[::1]:8443/"));
    assertThat(ValueParsers.httpUrl("http://h/hook?k=v", true)).isEqualTo(URI.create("http://h/hook?k=v"));
    assertThat(ValueParsers.normalizedUrl(URI.create("http://h/"))).isEqualTo("http://h:80");
    assertThat(ValueParsers.normalizedUrl(URI.create("https://h/v1//"))).isEqualTo("https://h:443/v1");
  }

  @Test
  void ipLiterals() {
    for (String ok : new String[] {"10.0.0.1", "0.0.0.0/0", "10.0.1.5/24", "::", "::1", "::/0", "fe80::1",
        "2001:db8:0:0:0:0:0:1", "2001:db8::/32", "::ffff:10.0.0.1", "1:2:3:4:5:6:7::", "FD00::/8"}) {
      IpLiterals.checkAddressOrCidr(ok);
    }
    for (String bad : new String[] {"", "localhost", "10.0.0", "10.0.0.256", "010.0.0.1", "10.0.0.1/", "10.0.0.1/a",
        "1:2:3:4:5:6:7:8:9", "1::2::3", "fe80::1%eth0", "12345::", "::g", "10.0.0.1/-1", "１.0.0.1"}) {
      assertThatThrownBy(() -> IpLiterals.checkAddressOrCidr(bad)).as(bad)
          .isInstanceOf(IllegalArgumentException.class);
    }
    assertThat(IpLiterals.parseIpv6("::ffff:10.0.0.1")).containsExactly(
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (byte) 0xff, (byte) 0xff, 10, 0, 0, 1);
  }

  @Test
  void suggestions() {
    assertThat(Suggestions.closest("max_retry", java.util.List.of("enabled", "max_retries", "max_wait")))
        .isEqualTo("max_retries");
    assertThat(Suggestions.closest("wieght", java.util.List.of("url", "weight"))).isEqualTo("weight");
    assertThat(Suggestions.closest("colour", java.util.List.of("listen", "backends"))).isNull();
  }
}
