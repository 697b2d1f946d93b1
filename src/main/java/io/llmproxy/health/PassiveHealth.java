package io.llmproxy.health;

import static java.util.Objects.requireNonNull;

import io.llmproxy.config.OutlierDetectionConfig;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;

/**
 * Passive outlier detection for one backend (SPEC §6.5), from the outcomes of the requests it
 * served, in the manner of Envoy's outlier detection and Armeria's ramping up:
 *
 * <ul>
 *   <li><b>Healthy</b> until {@code consecutive_failures} failures in a row, or a failure rate of at
 *       least {@code failure_rate} over {@code window} once it holds {@code min_requests} outcomes.
 *       Failures are connection errors, resets, timeouts, 5xx and 429; a backend's other 4xx is a
 *       success (the backend answered).</li>
 *   <li><b>Ejected</b> for {@code base_cooldown × 2^(k-1)}, capped at {@code max_cooldown}, ±10%
 *       jitter, where k counts the ejections since the backend was last healthy for a whole
 *       {@code window}. A 429's {@code retry-after} is the cooldown's minimum.</li>
 *   <li><b>Half-open</b> when the cooldown ends: at most {@code half_open_requests} canary requests
 *       at once. {@code half_open_requests} successes in a row close it; one failure ejects it
 *       again, for longer.</li>
 *   <li><b>Slow start</b> after that: its effective weight ramps linearly from 10% to 100% over
 *       {@code slow_start}, then it is healthy.</li>
 * </ul>
 *
 * <p>Thread-safe (every event loop reports to it); the clock and the jitter are injected so the
 * state machine is tested without sleeping. Every change of state goes to the {@link Listener} once.
 */
public final class PassiveHealth {

  /** Where the backend is in the cycle. */
  public enum State { HEALTHY, EJECTED, HALF_OPEN, SLOW_START }

  /** What went wrong with a request, as far as the backend's health goes. */
  public enum Failure { CONNECT, RESET, TIMEOUT, STATUS_5XX, STATUS_429 }

  /** Hears every change of state, once, outside the lock. */
  public interface Listener {
    void changed(State from, State to, String why, long cooldownNanos);
  }

  /** What {@link #tryAdmit} decided for one request. */
  public enum Admission {
    /** Not admitted: ejected, or half-open with every canary slot taken. */
    REFUSED,
    /** An ordinary request. */
    NORMAL,
    /** A half-open canary: report its outcome with {@code canary = true}. */
    CANARY
  }

  private static final int BUCKETS = 10;
  private static final double MIN_WEIGHT = 0.1;

  private final LongSupplier nanoClock;
  private final DoubleSupplier random;
  private final Listener listener;

  /** True while healthy with nothing due: the request path reads it without taking the lock. */
  private volatile boolean clear = true;
  // Guarded by this.
  private OutlierDetectionConfig config;
  private long windowNanos;
  private long bucketNanos;
  private State state = State.HEALTHY;
  private int consecutiveFailures;
  private final long[] bucketStart = new long[BUCKETS];
  private final int[] bucketRequests = new int[BUCKETS];
  private final int[] bucketFailures = new int[BUCKETS];
  /** Ejections since the backend was last healthy for a whole window. */
  private int ejections;
  private long ejectedUntil;
  private long lastCooldown;
  private long healthySince;
  private long slowStartFrom;
  private int canariesOut;
  private int canarySuccesses;

  public PassiveHealth(OutlierDetectionConfig config, LongSupplier nanoClock, DoubleSupplier random,
      Listener listener) {
    this.nanoClock = requireNonNull(nanoClock, "nanoClock");
    this.random = requireNonNull(random, "random");
    this.listener = requireNonNull(listener, "listener");
    synchronized (this) {
      settings(requireNonNull(config, "config"));
      this.healthySince = nanoClock.getAsLong();
    }
  }

  /**
   * A reload changed {@code outlier_detection}: the new settings apply from now on, to the state the
   * backend is in. An ejected backend stays out for the cooldown it was given, and its ejection count
   * and the canaries in flight carry over; a failure-rate window of another length starts over.
   */
  public synchronized void reconfigure(OutlierDetectionConfig next) {
    long window = windowNanos;
    settings(requireNonNull(next, "next"));
    if (windowNanos != window) {
      clearWindow();
    }
  }

  private void settings(OutlierDetectionConfig c) {
    this.config = c;
    this.windowNanos = Math.max(BUCKETS, c.window().toNanos());
    this.bucketNanos = windowNanos / BUCKETS;
  }

  /** The state now; an ended cooldown reads as half-open. */
  public State state() {
    Changes changes = new Changes();
    State s;
    synchronized (this) {
      s = advance(nanoClock.getAsLong(), changes);
    }
    changes.tell(listener);
    return s;
  }

  /**
   * Whether a request may go to this backend now, and as what. A {@link Admission#CANARY} takes one
   * of the half-open slots until its outcome is reported.
   */
  public Admission tryAdmit() {
    if (clear) {
      return Admission.NORMAL;
    }
    Changes changes = new Changes();
    Admission a;
    synchronized (this) {
      State s = advance(nanoClock.getAsLong(), changes);
      if (s == State.HEALTHY || s == State.SLOW_START) {
        a = Admission.NORMAL;
      } else if (s == State.HALF_OPEN && canariesOut < config.halfOpenRequests()) {
        canariesOut++;
        a = Admission.CANARY;
      } else {
        a = Admission.REFUSED;
      }
    }
    changes.tell(listener);
    return a;
  }

  /** Whether {@link #tryAdmit} would admit a request now (without taking a canary slot). */
  public boolean admits() {
    if (clear) {
      return true;
    }
    Changes changes = new Changes();
    boolean admits;
    synchronized (this) {
      State s = advance(nanoClock.getAsLong(), changes);
      admits = s == State.HEALTHY || s == State.SLOW_START
          || (s == State.HALF_OPEN && canariesOut < config.halfOpenRequests());
    }
    changes.tell(listener);
    return admits;
  }

  /** The backend answered (a 2xx, or a 4xx of its own). */
  public void success(boolean canary) {
    Changes changes = new Changes();
    synchronized (this) {
      long now = nanoClock.getAsLong();
      State s = advance(now, changes);
      record(now, false);
      consecutiveFailures = 0;
      if (canary && s == State.HALF_OPEN) {
        canariesOut = Math.max(0, canariesOut - 1);
        if (++canarySuccesses >= config.halfOpenRequests()) {
          recover(now, changes);
        }
      }
    }
    changes.tell(listener);
  }

  /** A request that ended without an outcome (cancelled): gives its canary slot back. */
  public synchronized void abandoned(boolean canary) {
    if (canary && canariesOut > 0) {
      canariesOut--;
    }
  }

  /**
   * The request failed. A 429 that carries a {@code retry-after} ejects the backend at once, for at
   * least that long: the backend has said when to come back.
   *
   * @param retryAfterNanos a 429's {@code retry-after}, or 0
   */
  public void failure(Failure failure, long retryAfterNanos, boolean canary) {
    Changes changes = new Changes();
    synchronized (this) {
      long now = nanoClock.getAsLong();
      State s = advance(now, changes);
      record(now, true);
      consecutiveFailures++;
      if (canary && canariesOut > 0) {
        canariesOut--;
      }
      String why = null;
      if (s == State.EJECTED) {
        why = null; // already out: a request admitted before the ejection
      } else if (s == State.HALF_OPEN) {
        why = canary ? "a half-open canary failed (" + label(failure) + ")" : null;
      } else if (failure == Failure.STATUS_429 && retryAfterNanos > 0) {
        why = "429 with retry-after";
      } else if (consecutiveFailures >= config.consecutiveFailures()) {
        why = consecutiveFailures + " consecutive failures (last: " + label(failure) + ")";
      } else if (rateExceeded(now)) {
        why = "failure rate at least " + config.failureRate() + " over the window (last: " + label(failure) + ")";
      }
      if (why != null) {
        eject(now, s, why, retryAfterNanos, changes);
      }
    }
    changes.tell(listener);
  }

  /** The factor (0.1 to 1) its weight is multiplied by now: below 1 only during slow start. */
  public double weightFactor() {
    if (clear) {
      return 1.0;
    }
    Changes changes = new Changes();
    double f;
    synchronized (this) {
      long now = nanoClock.getAsLong();
      if (advance(now, changes) != State.SLOW_START) {
        f = 1.0;
      } else {
        double progress = Math.min(1.0, (double) (now - slowStartFrom) / config.slowStart().toNanos());
        f = MIN_WEIGHT + (1 - MIN_WEIGHT) * progress;
      }
    }
    changes.tell(listener);
    return f;
  }

  /** Nanoseconds until the cooldown ends; 0 when not ejected. Orders backends in panic mode. */
  public synchronized long cooldownRemainingNanos() {
    long now = nanoClock.getAsLong();
    return state == State.EJECTED && now < ejectedUntil ? ejectedUntil - now : 0;
  }

  /** The cooldown being served, or 0 when not ejected. */
  public synchronized long currentCooldownNanos() {
    return state == State.EJECTED ? lastCooldown : 0;
  }

  // ---- inside the lock

  /** Time-driven moves: cooldown over to half-open, slow start over to healthy. */
  private State advance(long now, Changes changes) {
    if (state == State.EJECTED && now >= ejectedUntil) {
      changes.add(state, State.HALF_OPEN, "cooldown over", 0);
      state = State.HALF_OPEN;
      canariesOut = 0;
      canarySuccesses = 0;
    } else if (state == State.SLOW_START && now - slowStartFrom >= config.slowStart().toNanos()) {
      changes.add(state, State.HEALTHY, "slow start over", 0);
      state = State.HEALTHY;
      clear = true;
    }
    return state;
  }

  private void eject(long now, State from, String why, long retryAfterNanos, Changes changes) {
    boolean wasServing = from == State.HEALTHY || from == State.SLOW_START;
    if (wasServing && now - healthySince >= windowNanos) {
      ejections = 0; // healthy for a whole window since it last came back: the backoff starts over
    }
    ejections++;
    long base = config.baseCooldown().toNanos();
    long max = Math.max(base, config.maxCooldown().toNanos());
    long cooldown = ejections > 40 ? max : Math.min(max, base * (1L << (ejections - 1)));
    if (cooldown <= 0) {
      cooldown = max; // overflowed
    }
    cooldown = (long) (cooldown * (0.9 + 0.2 * random.getAsDouble()));
    cooldown = Math.max(cooldown, retryAfterNanos);
    changes.add(from, State.EJECTED, why, cooldown);
    state = State.EJECTED;
    clear = false;
    ejectedUntil = now + cooldown;
    lastCooldown = cooldown;
    consecutiveFailures = 0;
    canariesOut = 0;
    canarySuccesses = 0;
    clearWindow();
  }

  private void recover(long now, Changes changes) {
    canariesOut = 0;
    canarySuccesses = 0;
    consecutiveFailures = 0;
    clearWindow();
    healthySince = now;
    State to = config.slowStart().isZero() ? State.HEALTHY : State.SLOW_START;
    changes.add(state, to, config.halfOpenRequests() + " canary requests in a row succeeded", 0);
    state = to;
    clear = to == State.HEALTHY;
    slowStartFrom = now;
  }

  private void record(long now, boolean failed) {
    int i = (int) Math.floorMod(now / bucketNanos, (long) BUCKETS);
    long start = now - Math.floorMod(now, bucketNanos);
    if (bucketStart[i] != start) {
      bucketStart[i] = start;
      bucketRequests[i] = 0;
      bucketFailures[i] = 0;
    }
    bucketRequests[i]++;
    if (failed) {
      bucketFailures[i]++;
    }
  }

  private boolean rateExceeded(long now) {
    long requests = 0;
    long failures = 0;
    for (int i = 0; i < BUCKETS; i++) {
      if (now - bucketStart[i] < windowNanos) {
        requests += bucketRequests[i];
        failures += bucketFailures[i];
      }
    }
    return requests >= Math.max(1, config.minRequests()) && failures >= config.failureRate() * requests;
  }

  private void clearWindow() {
    java.util.Arrays.fill(bucketStart, 0);
    java.util.Arrays.fill(bucketRequests, 0);
    java.util.Arrays.fill(bucketFailures, 0);
  }

  private static String label(Failure f) {
    return f.name().toLowerCase(java.util.Locale.ROOT);
  }

  /** One change of state. */
  private record Change(State from, State to, String why, long cooldownNanos) {}

  /** Changes of state made under the lock, told to the listener after it is released. */
  private static final class Changes {
    private java.util.List<Change> list;

    void add(State from, State to, String why, long cooldownNanos) {
      if (from == to) {
        return;
      }
      if (list == null) {
        list = new java.util.ArrayList<>(2);
      }
      list.add(new Change(from, to, why, cooldownNanos));
    }

    void tell(Listener l) {
      if (list != null) {
        for (Change c : list) {
          l.changed(c.from(), c.to(), c.why(), c.cooldownNanos());
        }
      }
    }
  }
}
