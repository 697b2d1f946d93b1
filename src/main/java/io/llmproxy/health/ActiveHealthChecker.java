package io.llmproxy.health;

import static java.util.Objects.requireNonNull;

import io.llmproxy.config.HealthCheckConfig;
import io.llmproxy.routing.Backend;
import io.llmproxy.routing.Backend.Health;
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
  private final HttpClientAgent http;
  private final HealthCheckConfig config;
  private final List<Probe> probes = new ArrayList<>();
  private volatile boolean stopped;

  public ActiveHealthChecker(Vertx vertx, HttpClientAgent http, HealthCheckConfig config, List<Backend> backends) {
    this.vertx = requireNonNull(vertx, "vertx");
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
    for (Probe p : probes) {
      p.check();
    }
  }

  public void stop() {
    stopped = true;
    for (Probe p : probes) {
      if (p.timer >= 0) {
        vertx.cancelTimer(p.timer);
      }
    }
  }

  private final class Probe {
    private final Backend backend;
    private int successes;
    private int failures;
    private long timer = -1;

    Probe(Backend backend) {
      this.backend = backend;
    }

    void check() {
      if (stopped) {
        return;
      }
      RequestOptions options = backend.probe(config.path(), config.timeout().toMillis());
      // The idle timeout fails the check when the backend sends nothing for `timeout`.
      http.request(options)
          .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode())))
          .onComplete(ar -> {
            boolean ok = ar.succeeded() && ar.result() >= 200 && ar.result() < 300;
            String detail = ar.succeeded() ? "HTTP " + ar.result() : String.valueOf(ar.cause().getMessage());
            record(ok, detail);
            if (!stopped) {
              timer = vertx.setTimer(config.interval().toMillis(), id -> check());
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
