package io.llmproxy.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.llmproxy.cli.Main;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class BenchSettingsTest {

  private static BenchSettings at(String url) {
    return BenchSettings.closedLoop(URI.create(url), false, 1, Duration.ofSeconds(1));
  }

  @Test
  void theUrlIsASchemeAHostAndAPort() {
    assertThat(at("http://127.0.0.1:8080").baseUrl()).isEqualTo(URI.create("http://127.0.0.1:8080"));
    assertThat(at("https://gw.example:8443/").baseUrl()).isEqualTo(URI.create("https://gw.example:8443"));
    assertThatThrownBy(() -> at("notaurl")).hasMessageContaining("must be an http:// or https:// URL with a host");
    assertThatThrownBy(() -> at("ftp://127.0.0.1:21")).hasMessageContaining("must be an http:// or https:// URL");
    assertThatThrownBy(() -> at("http://127.0.0.1:99999")).hasMessageContaining("port 99999 is out of range");
    assertThatThrownBy(() -> at("http://127.0.0.1:8080/v1")).hasMessageContaining("the request path is --path");
    assertThatThrownBy(() -> at("http://127.0.0.1:8080?x=1")).hasMessageContaining("the request path is --path");
  }

  @Test
  void aBadUrlIsAUsageErrorNotAStackTrace() {
    StringWriter err = new StringWriter();
    int code = new CommandLine(new Main()).setErr(new PrintWriter(err, true)).execute("bench", "--url", "notaurl");
    assertThat(code).isEqualTo(2);
    assertThat(err.toString()).startsWith("--url must be an http:// or https:// URL with a host").doesNotContain("\tat ");
  }
}
