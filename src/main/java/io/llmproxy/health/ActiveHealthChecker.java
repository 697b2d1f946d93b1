package io.llmproxy.health;

import static java.util.Objects.requireNonNull;

import io.llmproxy.config.HealthCheckConfig;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Backend.Health;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.RequestOptions;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Active health checks (SPEC §6.5, first bullet): {@code GET url+path} every {@code interval} with
 * {@code timeout}; a backend goes down after {@code unhealthy_threshold} straight failures and comes
 * back after {@code healthy_threshold} straight successes. A 2xx is a success; anything else, a
 * timeout or a connection error is a failure. The first check runs at once, and until it finishes a
 * backend is routable but does not count toward readiness. Each change of state is logged once.
 */
public final class ActiveHealthChecker {
  private static final Logger LOG = LoggerFactory.getLogger(ActiveHealthChecker.class);

  private final Vertx vertx;
  private final Context context;
  private final HttpClientAgent http;
  private final HealthCheckConfig config;
  private final List<Probe> probes = new ArrayList<>();
  private volatile boolean stopped;

  public ActiveHealthChecker(Vertx vertx, HttpClientAgent http, HealthCheckConfig config, List<Backend> backends) {
    this.vertx = requireNonNull(vertx, "vertx");
    this.context = vertx.getOrCreateContext();
    this.http = requireNonNull(http, "http");
    this.config = requireNonNull(config, "config");
    for (Backend b : backends) {
      probes.add(new Probe(b));
    }
  }

  public void start() {
    if (!config.enabled()) {
      return;
    }
    // Everything of the checker runs on this one context: its timers, and the probes' callbacks.
    context.runOnContext(v -> {
      for (Probe p : probes) {
        p.check();
        // At a fixed rate, so a probe that hangs until its timeout does not stretch the interval.
        p.timer = vertx.setPeriodic(config.interval().toMillis(), id -> p.check());
      }
    });
  }

  public void stop() {
    stopped = true;
    context.runOnContext(v -> {
      for (Probe p : probes) {
        if (p.timer >= 0) {
          vertx.cancelTimer(p.timer);
        }
      }
    });
  }

  private final class Probe {
    private final Backend backend;
    private int successes;
    private int failures;
    private long timer = -1;
    /** True while a probe is out; a tick that finds one still out is skipped. */
    private boolean inFlight;

    Probe(Backend backend) {
      this.backend = backend;
    }

    void check() {
      if (stopped || inFlight) {
        return;
      }
      inFlight = true;
      RequestOptions options = backend.probe(config.path(), config.timeout().toMillis());
      // The idle timeout fails the check when the backend sends nothing for `timeout`.
      http.request(options)
          .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode())))
          .onComplete(ar -> {
            inFlight = false;
            boolean ok = ar.succeeded() && ar.result() >= 200 && ar.result() < 300;
            String detail = ar.succeeded() ? "HTTP " + ar.result() : String.valueOf(ar.cause().getMessage());
            if (!stopped) {
              record(ok, detail);
            }
          });
    }

    private void record(boolean ok, String detail) {
      Health before = backend.health();
      if (ok) {
        failures = 0;
        successes++;
        if (before != Health.UP && successes >= config.healthyThreshold()) {
          backend.health(Health.UP);
          LOG.info("backend {} is up ({} consecutive successful health checks)", backend.name(), successes);
        }
      } else {
        successes = 0;
        failures++;
        if (before != Health.DOWN && failures >= config.unhealthyThreshold()) {
          backend.health(Health.DOWN);
          LOG.warn("backend {} is down ({} consecutive failed health checks, last: {})", backend.name(), failures,
              detail);
        }
      }
    }
  }
}
