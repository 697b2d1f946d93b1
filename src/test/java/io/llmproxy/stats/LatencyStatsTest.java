package io.llmproxy.stats;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Windowed percentiles, peak EWMA and the per-backend registry, on an injected clock. */
class LatencyStatsTest {
  private static final long MS = 1_000_000L;
  private static final long S = 1_000 * MS;

  @Test
  void percentilesCoverTheWindowAndOldSlotsFallOut() {
    LatencyWindow w = new LatencyWindow(3, 10 * S);
    long t = 1_000 * S;
    for (int i = 1; i <= 100; i++) {
      w.record(i * MS, t);
    }
    assertThat(w.count(t)).isEqualTo(100);
    assertThat(w.percentileNanos(50, t) / (double) MS).isCloseTo(50, within(1.0));
    assertThat(w.percentileNanos(99, t) / (double) MS).isCloseTo(99, within(1.0));

    // 15 s later the first slot is still in the 30 s window; 35 s later it is gone.
    long later = t + 15 * S;
    for (int i = 0; i < 100; i++) {
      w.record(500 * MS, later);
    }
    assertThat(w.count(later)).isEqualTo(200);
    assertThat(w.percentileNanos(25, later + LatencyWindow.CACHE_NANOS) / (double) MS).isCloseTo(50, within(1.0));
    long gone = t + 35 * S;
    assertThat(w.count(gone)).isEqualTo(100);
    assertThat(w.percentileNanos(25, gone) / (double) MS).isCloseTo(500, within(5.0));
    assertThat(w.count(t + 60 * S)).isZero();
    assertThat(w.percentileNanos(50, t + 60 * S)).isEqualTo(-1);
  }

  @Test
  void valuesUpToFifteenMinutesAreTracked() {
    LatencyWindow w = new LatencyWindow(3, 10 * S);
    w.record(14 * 60 * S, 0);
    assertThat(w.percentileNanos(100, 0) / (double) S).isCloseTo(14 * 60, within(14 * 60 * 0.01));
    w.record(60 * 60 * S, 0); // an hour is capped at the ceiling
    assertThat(w.count(0)).isEqualTo(2);
  }

  @Test
  void severalPercentilesAtOnceAreFreshAndLeaveTheCachedOneAlone() {
    LatencyWindow w = new LatencyWindow(3, 10 * S);
    assertThat(w.percentilesNanos(new double[] {50, 99}, 0)).containsExactly(-1, -1);
    w.record(10 * MS, 0);
    assertThat(w.percentileNanos(50, 0) / (double) MS).isCloseTo(10, within(0.1));
    for (int i = 1; i <= 100; i++) {
      w.record(i * MS, 1);
    }
    long[] p = w.percentilesNanos(new double[] {50, 99}, 2);
    assertThat(p[0] / (double) MS).isCloseTo(50, within(1.0));
    assertThat(p[1] / (double) MS).isCloseTo(99, within(1.0));
    assertThat(w.percentileNanos(50, 3) / (double) MS).as("the hedge's cached value").isCloseTo(10, within(0.1));
  }

  @Test
  void everyEntryIsVisited() {
    LatencyStats stats = new LatencyStats(() -> 0L, (b, m, k, e) -> { });
    stats.record("a", "m1", LatencyStats.Kind.TTFT, 5 * MS);
    stats.record("a", null, LatencyStats.Kind.LATENCY, 7 * MS);
    stats.record("b", "m1", LatencyStats.Kind.TTFT, 9 * MS);
    List<String> seen = new ArrayList<>();
    stats.forEach((backend, model, kind, entry) -> seen.add(backend + "/" + model + "/" + kind + "/" + entry.window().count(0)));
    assertThat(seen).containsExactlyInAnyOrder("a/m1/TTFT/1", "a//LATENCY/1", "b/m1/TTFT/1");
  }

  @Test
  void aPercentileIsCachedForAMoment() {
    LatencyWindow w = new LatencyWindow(3, 10 * S);
    w.record(10 * MS, 0);
    assertThat(w.percentileNanos(50, 0) / (double) MS).isCloseTo(10, within(0.1));
    w.record(90 * MS, 1);
    w.record(90 * MS, 2);
    assertThat(w.percentileNanos(50, 3) / (double) MS).as("cached").isCloseTo(10, within(0.1));
    assertThat(w.percentileNanos(50, LatencyWindow.CACHE_NANOS + 3) / (double) MS).isCloseTo(90, within(1.0));
  }

  @Test
  void peakEwmaJumpsToAPeakAndDecaysBetweenSamples() {
    PeakEwma e = new PeakEwma(10 * S);
    assertThat(e.get(0)).isZero();
    assertThat(e.seen()).isFalse();
    e.observe(100 * MS, 0);
    assertThat(e.get(0)).isEqualTo(100 * MS);
    e.observe(500 * MS, S);
    assertThat(e.get(S)).as("a peak replaces the average at once").isEqualTo(500 * MS);
    e.observe(100 * MS, 11 * S); // 10 s later: weight of the new sample 1 - 1/e
    assertThat(e.get(11 * S) / MS).isCloseTo(500 / Math.E + 100 * (1 - 1 / Math.E), within(0.5));
    double now = e.get(11 * S);
    assertThat(e.get(21 * S)).as("decays with no samples").isCloseTo(now / Math.E, within(1.0));
  }

  @Test
  void entriesArePerBackendModelAndKindAndAnnouncedOnce() {
    List<String> created = new ArrayList<>();
    long[] now = {0};
    LatencyStats stats = new LatencyStats(() -> now[0], 3, 10 * S, 10 * S,
        (backend, model, kind, entry) -> created.add(backend + "/" + model + "/" + kind));
    stats.record("a", "m", LatencyStats.Kind.TTFT, 50 * MS);
    stats.record("a", "m", LatencyStats.Kind.TTFT, 70 * MS);
    stats.record("a", "m", LatencyStats.Kind.LATENCY, 900 * MS);
    stats.record("b", "m", LatencyStats.Kind.TTFT, 10 * MS);
    assertThat(created).containsExactly("a/m/TTFT", "a/m/LATENCY", "b/m/TTFT");
    assertThat(stats.entry("a", "m", LatencyStats.Kind.TTFT).window().count(0)).isEqualTo(2);
    assertThat(stats.entry("a", "m", LatencyStats.Kind.TTFT).ewma().get(0)).isEqualTo(70 * MS);
  }

  @Test
  void modelNamesPerBackendAreBounded() {
    LatencyStats stats = new LatencyStats(() -> 0, (b, m, k, e) -> { });
    for (int i = 0; i < LatencyStats.MAX_MODELS * 3; i++) {
      stats.record("a", "model-" + i, LatencyStats.Kind.TTFT, MS);
    }
    LatencyStats.Entry other = stats.entry("a", "model-x", LatencyStats.Kind.TTFT);
    assertThat(other).isSameAs(stats.entry("a", "model-y", LatencyStats.Kind.TTFT));
  }
}
