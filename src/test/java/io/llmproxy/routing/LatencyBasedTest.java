package io.llmproxy.routing;

import static org.assertj.core.api.Assertions.assertThat;

import io.llmproxy.config.BackendConfig;
import io.llmproxy.config.Strategy;
import io.llmproxy.stats.LatencyStats;
import java.net.URI;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** latency_based: power of two choices over the peak EWMA of TTFT, weighted, load-aware. */
class LatencyBasedTest {
  private static final long MS = 1_000_000L;

  private static Backend backend(String name, int index) {
    return new Backend(new BackendConfig(URI.create("http://" + name + ":1"), name, 1, List.of(), null, null,
        Map.of(), 0), index, false);
  }

  private final long[] now = {1_000_000 * MS};
  private final LatencyStats stats = new LatencyStats(() -> now[0], (b, m, k, e) -> { });
  private final LoadBalancer lb = LoadBalancer.of(Strategy.LATENCY_BASED, stats);

  private Map<String, Integer> picks(CandidateGroup g, int n) {
    Map<String, Integer> count = new HashMap<>();
    for (int i = 0; i < n; i++) {
      count.merge(lb.pick(g, b -> true, "m", true).name(), 1, Integer::sum);
    }
    return count;
  }

  @Test
  void withTwoBackendsTheFasterAlwaysWins() {
    Backend fast = backend("fast", 0);
    Backend slow = backend("slow", 1);
    stats.record("fast", "m", LatencyStats.Kind.TTFT, 50 * MS);
    stats.record("slow", "m", LatencyStats.Kind.TTFT, 200 * MS);
    assertThat(picks(new CandidateGroup(List.of(fast, slow)), 100)).containsOnlyKeys("fast");
  }

  @Test
  void theSlowestOfThreeIsNeverPickedAndTheOthersShareByCost() {
    Backend a = backend("a", 0);
    Backend b = backend("b", 1);
    Backend c = backend("c", 2);
    stats.record("a", "m", LatencyStats.Kind.TTFT, 60 * MS);
    stats.record("b", "m", LatencyStats.Kind.TTFT, 120 * MS);
    stats.record("c", "m", LatencyStats.Kind.TTFT, 250 * MS);
    Map<String, Integer> count = picks(new CandidateGroup(List.of(a, b, c)), 3_000);
    // Pairs {a,b} and {a,c} go to a, {b,c} to b: a about 2/3, b about 1/3, c never.
    assertThat(count.getOrDefault("c", 0)).isZero();
    assertThat(count.get("a")).isBetween(1_800, 2_200);
    assertThat(count.get("b")).isBetween(800, 1_200);
  }

  @Test
  void loadCountsAndAnUnknownBackendIsTried() {
    Backend fast = backend("fast", 0);
    Backend slow = backend("slow", 1);
    stats.record("fast", "m", LatencyStats.Kind.TTFT, 50 * MS);
    stats.record("slow", "m", LatencyStats.Kind.TTFT, 120 * MS);
    for (int i = 0; i < 3; i++) {
      fast.tryAcquire(false); // 50 x 4 in flight = 200 > 120 x 1
    }
    assertThat(picks(new CandidateGroup(List.of(fast, slow)), 10)).containsOnlyKeys("slow");

    Backend fresh = backend("fresh", 2);
    assertThat(lb.pick(new CandidateGroup(List.of(slow, fresh)), x -> true, "m", true)).isSameAs(fresh);
  }
}
