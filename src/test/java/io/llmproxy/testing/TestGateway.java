package io.llmproxy.testing;

import io.github.bucket4j.TimeMeter;
import io.llmproxy.config.ConfigLoader;
import io.llmproxy.config.GatewayConfig;
import io.llmproxy.server.Gateway;
import io.llmproxy.sim.RequestRecord;
import io.llmproxy.sim.Simulator;
import io.llmproxy.sim.SimulatorOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.transport.Transport;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;

/**
 * A gateway on a free port in front of in-process simulated backends, for integration tests. The
 * config is YAML in which {@code ${SIM0}}, {@code ${SIM1}}, ... are the simulators' URLs; a
 * {@code listen} on 127.0.0.1 port 0 is added (unless {@link Builder#ownListen}). The simulators and the test client share one Vert.x;
 * the gateway has its own, as in production.
 */
public final class TestGateway implements AutoCloseable {
  public final Vertx vertx;
  public final List<Simulator> sims;
  public final Gateway gateway;
  public final TestClient client;

  private final ByteArrayOutputStream accessLog;
  private final String host;
  /** The config file it was started from, with {@code ${SIMi}} and the vars written out; null when none. */
  private final Path configFile;
  private final Map<String, String> env;
  private final boolean addListen;

  private TestGateway(Vertx vertx, List<Simulator> sims, Gateway gateway, ByteArrayOutputStream accessLog,
      Path configFile, Map<String, String> env, boolean addListen) {
    this.vertx = vertx;
    this.sims = sims;
    this.gateway = gateway;
    this.accessLog = accessLog;
    this.configFile = configFile;
    this.env = env;
    this.addListen = addListen;
    this.host = clientHost(gateway);
    this.client = TestClient.to(vertx, host, gateway.port());
  }

  public static TestGateway start(String yaml, SimulatorOptions... backends) {
    return builder(yaml).start(backends);
  }

  public static TestGateway start(String yaml, Map<String, String> vars, SimulatorOptions... backends) {
    return builder(yaml).vars(vars).start(backends);
  }

  /** A gateway whose key expiry and quota periods follow {@code clock} and whose rate limits follow {@code time}. */
  public static TestGateway start(String yaml, Map<String, String> vars, Clock clock, TimeMeter time,
      SimulatorOptions... backends) {
    return builder(yaml).vars(vars).clock(clock).timeMeter(time).start(backends);
  }

  public static Builder builder(String yaml) {
    return new Builder(yaml);
  }

  /** How to start a test gateway; {@link #start} starts the simulators and then the gateway. */
  public static final class Builder {
    private final String yaml;
    private Map<String, String> vars = Map.of();
    private Clock clock = Clock.systemUTC();
    private TimeMeter time = TimeMeter.SYSTEM_NANOTIME;
    private boolean addListen = true;
    private boolean captureAccessLog;
    private Transport transport;
    private Path configFile;

    private Builder(String yaml) {
      this.yaml = yaml;
    }

    public Builder vars(Map<String, String> vars) {
      this.vars = vars;
      return this;
    }

    public Builder clock(Clock clock) {
      this.clock = clock;
      return this;
    }

    public Builder timeMeter(TimeMeter time) {
      this.time = time;
      return this;
    }

    /** The YAML has its own {@code listen} (port 0): none is added, and the client connects to its host. */
    public Builder ownListen() {
      this.addListen = false;
      return this;
    }

    /** Runs the gateway on {@code transport} instead of the one its config names. */
    public Builder transport(Transport transport) {
      this.transport = transport;
      return this;
    }

    /**
     * Starts the gateway from a config file at {@code file} (the YAML with its variables written
     * out), which {@link Gateway#reload()} reads again; {@link TestGateway#writeConfig} rewrites it.
     */
    public Builder configFile(Path file) {
      this.configFile = file;
      return this;
    }

    /** Keeps a copy of the access log, which the gateway writes to standard output ({@link #accessLog()}). */
    public Builder captureAccessLog() {
      this.captureAccessLog = true;
      return this;
    }

    public TestGateway start(SimulatorOptions... backends) {
      Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(2));
      List<Simulator> sims = new ArrayList<>();
      try {
        Map<String, String> env = new HashMap<>(vars);
        for (int i = 0; i < backends.length; i++) {
          Simulator s = await(Simulator.start(vertx, backends[i]));
          sims.add(s);
          env.put("SIM" + i, s.url());
        }
        GatewayConfig config;
        if (configFile != null) {
          Files.writeString(configFile, written(yaml, env, addListen));
          config = ConfigLoader.load(configFile);
        } else {
          config = ConfigLoader.parse((addListen ? "listen: \"127.0.0.1:0\"\n" : "") + yaml, env::get);
        }
        ByteArrayOutputStream accessLog = null;
        Future<Gateway> starting;
        if (captureAccessLog) {
          // The access log takes System.out when the gateway is built, which Gateway.start does at once.
          accessLog = new ByteArrayOutputStream();
          PrintStream original = System.out;
          System.setOut(new PrintStream(new TeeOutputStream(original, accessLog), true, StandardCharsets.UTF_8));
          try {
            starting = startGateway(config);
          } finally {
            System.setOut(original);
          }
        } else {
          starting = startGateway(config);
        }
        Gateway gateway = await(starting);
        if (configFile != null) {
          gateway.configFile(configFile);
        }
        return new TestGateway(vertx, sims, gateway, accessLog, configFile, env, addListen);
      } catch (Exception e) {
        vertx.close();
        throw new IllegalStateException("test gateway did not start", e);
      }
    }

    private Future<Gateway> startGateway(GatewayConfig config) {
      return transport == null ? Gateway.start(config, clock, time) : Gateway.start(config, clock, time, transport);
    }
  }

  /** The YAML as a file holds it: the {@code listen} added, {@code ${NAME}} replaced by its value. */
  private static String written(String yaml, Map<String, String> env, boolean addListen) {
    String text = (addListen ? "listen: \"127.0.0.1:0\"\n" : "") + yaml;
    for (Map.Entry<String, String> e : env.entrySet()) {
      text = text.replace("${" + e.getKey() + "}", e.getValue());
    }
    return text;
  }

  /** Rewrites the config file it was started from ({@link Builder#configFile}), as an operator edits it. */
  public void writeConfig(String yaml) {
    if (configFile == null) {
      throw new IllegalStateException("start the gateway with configFile()");
    }
    try {
      Files.writeString(configFile, written(yaml, env, addListen));
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** Writes to both streams. */
  private static final class TeeOutputStream extends OutputStream {
    private final OutputStream a;
    private final OutputStream b;

    TeeOutputStream(OutputStream a, OutputStream b) {
      this.a = a;
      this.b = b;
    }

    @Override
    public void write(int c) throws IOException {
      a.write(c);
      b.write(c);
    }

    @Override
    public void write(byte[] bytes, int off, int len) throws IOException {
      a.write(bytes, off, len);
      b.write(bytes, off, len);
    }

    @Override
    public void flush() throws IOException {
      a.flush();
      b.flush();
    }
  }

  /** The access log so far (when started with {@link Builder#captureAccessLog()}). */
  public String accessLog() {
    if (accessLog == null) {
      throw new IllegalStateException("start the gateway with captureAccessLog()");
    }
    return accessLog.toString(StandardCharsets.UTF_8);
  }

  /** The host the client connects to: the listen host, or loopback for a wildcard. */
  private static String clientHost(Gateway gateway) {
    String host = gateway.config().listen().host();
    return host.equals("0.0.0.0") || host.equals("::") || host.isEmpty() ? "127.0.0.1" : host;
  }

  public Simulator sim(int i) {
    return sims.get(i);
  }

  /** The inference requests simulator {@code i} saw: its POSTs, without health checks and model lists. */
  public List<RequestRecord> posts(int i) {
    return sims.get(i).requests().stream().filter(r -> r.method().equals("POST")).toList();
  }

  public int port() {
    return gateway.port();
  }

  public String url() {
    return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + gateway.port();
  }

  public static <T> T await(Future<T> f) {
    try {
      return f.toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Closes everything, after checking that every backend's in-flight count went back to zero: each
   * upstream attempt gives its slot back exactly once, however it ended.
   */
  @Override
  public void close() {
    try {
      Awaitility.await("in-flight counts back to zero").atMost(Duration.ofSeconds(5))
          .until(() -> gateway.router().backends().stream().allMatch(b -> b.inflight() == 0));
    } finally {
      closeQuietly();
    }
  }

  private void closeQuietly() {
    try {
      await(gateway.close());
    } finally {
      await(vertx.close());
    }
  }
}
