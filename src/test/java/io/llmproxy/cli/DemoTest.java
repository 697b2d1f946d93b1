package io.llmproxy.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.llmproxy.testing.TestGateway;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code llmproxy demo} (SPEC §2): every {@code curl} command it prints works when pasted, against
 * the demo itself.
 */
class DemoTest {

  /** One pasted curl command: the part before any pipe. */
  record Curl(String text, String url, String body, Map<String, String> headers, boolean noBuffer) {
    String method() {
      return body == null ? "GET" : "POST";
    }
  }

  /** The printed shell commands that start with curl, continuation lines joined. */
  static List<String> curlCommands(String output) {
    List<String> commands = new ArrayList<>();
    StringBuilder current = null;
    for (String line : output.split("\\R")) {
      String stripped = line.strip();
      if (current == null) {
        if (!stripped.startsWith("curl ")) {
          continue;
        }
        current = new StringBuilder();
      }
      if (stripped.endsWith("\\")) {
        current.append(stripped.substring(0, stripped.length() - 1).stripTrailing()).append(' ');
      } else {
        commands.add(current.append(stripped).toString());
        current = null;
      }
    }
    assertThat(current).as("a command ends with a continuation backslash").isNull();
    return commands;
  }

  /**
   * POSIX shell words, with single and double quotes, backslash escapes and line continuations; stops
   * at an unquoted pipe.
   */
  static List<String> shellWords(String command) {
    List<String> words = new ArrayList<>();
    StringBuilder w = null;
    for (int i = 0; i < command.length(); i++) {
      char c = command.charAt(i);
      if (c == '\'') {
        int end = command.indexOf('\'', i + 1);
        assertThat(end).as("closing quote in %s", command).isPositive();
        w = w == null ? new StringBuilder() : w;
        w.append(command, i + 1, end);
        i = end;
      } else if (c == '"') {
        w = w == null ? new StringBuilder() : w;
        for (i++; command.charAt(i) != '"'; i++) {
          char d = command.charAt(i);
          if (d == '\\' && "\"\\$`".indexOf(command.charAt(i + 1)) >= 0) {
            d = command.charAt(++i);
          }
          w.append(d);
        }
      } else if (c == '\\' && command.charAt(i + 1) == '\n') {
        i++; // a line continuation
      } else if (c == '\\') {
        w = w == null ? new StringBuilder() : w;
        w.append(command.charAt(++i));
      } else if (c == '|') {
        break;
      } else if (Character.isWhitespace(c)) {
        if (w != null) {
          words.add(w.toString());
          w = null;
        }
      } else {
        w = w == null ? new StringBuilder() : w;
        w.append(c);
      }
    }
    if (w != null) {
      words.add(w.toString());
    }
    return words;
  }

  static Curl parse(String command) {
    List<String> words = shellWords(command);
    assertThat(words.get(0)).isEqualTo("curl");
    String url = null;
    String body = null;
    boolean noBuffer = false;
    Map<String, String> headers = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
    for (int i = 1; i < words.size(); i++) {
      String w = words.get(i);
      switch (w) {
        case "-d", "--data", "--data-raw", "--data-binary" -> body = words.get(++i);
        case "-H", "--header" -> {
          String h = words.get(++i);
          int colon = h.indexOf(':');
          headers.put(h.substring(0, colon).strip(), h.substring(colon + 1).strip());
        }
        case "-X", "--request" -> throw new AssertionError("-X is not expected: " + command);
        default -> {
          if (w.startsWith("http://") || w.startsWith("https://")) {
            url = w;
          } else if (w.startsWith("-") && !w.startsWith("--")) {
            noBuffer |= w.contains("N"); // -s, -sN: flags only
          } else if (!w.equals("--silent") && !w.equals("--no-buffer")) {
            throw new AssertionError("unexpected curl argument '" + w + "' in " + command);
          } else {
            noBuffer |= w.equals("--no-buffer");
          }
        }
      }
    }
    assertThat(url).as("url in %s", command).isNotNull();
    return new Curl(command, url, body, headers, noBuffer);
  }

  @Test
  void theWordsOfACommand() {
    assertThat(shellWords("curl -s http://h:1/x -H 'A: b' \\\n -d '{\"k\":\"v w\"}' | grep x"))
        .containsExactly("curl", "-s", "http://h:1/x", "-H", "A: b", "-d", "{\"k\":\"v w\"}");
    assertThat(curlCommands("# x\ncurl -s a \\\n  -d 'b'\ncurl c | grep d\npython3 -c 'x'\n"))
        .containsExactly("curl -s a -d 'b'", "curl c | grep d");
  }

  @Test
  void aPortOutOfRangeOrInUseIsSaidInOneLine() throws Exception {
    StringWriter err = new StringWriter();
    assertThat(new CommandLine(new DemoCommand()).setErr(new PrintWriter(err, true)).execute("--port", "99999"))
        .isEqualTo(2);
    assertThat(err.toString()).isEqualTo("demo: --port must be in 0..65535: 99999" + System.lineSeparator());

    try (ServerSocket taken = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"))) {
      StringWriter inUse = new StringWriter();
      assertThat(new CommandLine(new DemoCommand()).setErr(new PrintWriter(inUse, true))
          .execute("--port", Integer.toString(taken.getLocalPort()))).isEqualTo(1);
      assertThat(inUse.toString()).startsWith(
          "llmproxy demo could not start: listen: cannot listen on 127.0.0.1:" + taken.getLocalPort() + ": ")
          .doesNotContain("\tat ");
    }
  }

  @Test
  void everyPrintedCurlCommandWorks() throws Exception {
    StringWriter printed = new StringWriter();
    DemoCommand demo = new DemoCommand();
    CommandLine cmd = new CommandLine(demo).setOut(new PrintWriter(printed, true));
    cmd.parseArgs("--port", "0");
    DemoCommand.Running running = demo.start();
    try {
      String out = printed.toString();
      int port = running.gateway().port();
      assertThat(out).contains("http://127.0.0.1:" + port);

      List<Curl> curls = curlCommands(out).stream().map(DemoTest::parse).toList();
      assertThat(curls).extracting(c -> URI.create(c.url()).getPath())
          .containsExactly("/v1/chat/completions", "/v1/chat/completions", "/v1/models", "/ready", "/metrics");
      assertThat(curls).allSatisfy(c -> assertThat(URI.create(c.url()).getPort()).isEqualTo(port));

      HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(2)).build();
      for (Curl c : curls) {
        if (URI.create(c.url()).getPath().equals("/metrics")) {
          // the requests above are counted as each ends, on whichever event loop served it
          await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> replay(http, c));
        } else {
          replay(http, c);
        }
      }
    } finally {
      running.stop();
      // stop() closes the simulators only after the gateway's close future notifies its listeners, which it
      // never does (see GatewayShutdownTest); so wait for that future by polling and close them here.
      TestGateway.await(running.gateway().close());
      TestGateway.await(running.simulators().close());
    }
  }

  /** Sends what the curl command would, and checks the answer. */
  private static void replay(HttpClient http, Curl c) throws Exception {
    HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(c.url())).timeout(Duration.ofSeconds(10));
    c.headers().forEach(req::header);
    req.method(c.method(), c.body() == null
        ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(c.body()));
    HttpResponse<String> resp = http.send(req.build(), HttpResponse.BodyHandlers.ofString());

    assertThat(resp.statusCode()).as("%s\n-> %s", c.text(), resp.body()).isEqualTo(200);
    String path = URI.create(c.url()).getPath();
    if (c.body() != null && c.body().contains("\"stream\":true")) {
      assertThat(c.noBuffer()).as("a streamed curl uses -N").isTrue();
      assertThat(resp.headers().firstValue("content-type")).hasValueSatisfying(
          t -> assertThat(t).startsWith("text/event-stream"));
      List<String> events = resp.body().lines().filter(l -> !l.isEmpty()).toList();
      assertThat(events).hasSizeGreaterThan(3).allSatisfy(l -> assertThat(l).startsWith("data: "));
      assertThat(events).last().isEqualTo("data: [DONE]");
      assertThat(events.get(events.size() - 2)).contains("\"finish_reason\":\"stop\"");
    } else if (path.equals("/v1/chat/completions")) {
      assertThat(resp.body()).contains("\"object\":\"chat.completion\"", "\"model\":\"llama-3-8b-instruct\"");
    } else if (path.equals("/v1/models")) {
      assertThat(resp.body()).contains("\"id\":\"llama-3-8b\"", "\"id\":\"llama-3-8b-instruct\"");
    } else if (path.equals("/metrics")) {
      assertThat(resp.body()).contains("llmproxy_requests_total");
      assertThat(resp.body().lines().filter(l -> l.startsWith("llmproxy_requests_total{")))
          .anySatisfy(l -> assertThat(l).contains("model=\"llama-3-8b\"", "status=\"200\"", "stream=\"true\""));
    }
  }
}
