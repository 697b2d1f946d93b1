package io.llmproxy.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.llmproxy.config.ApiKeyConfig.KeyStatus;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.config.QuotaPeriod;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.time.LocalDate;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The embedded store: what it keeps survives closing and opening again; one process at a time. */
class EmbeddedStoreTest {
  @TempDir
  Path dir;

  @Test
  void keysCountersTotalsAndTheSpoolSurviveAReopen() {
    StoredKey full = new StoredKey("key_a", "ab".repeat(32), "sk-llmproxy-...abcd", "team", "u1", KeyStatus.DISABLED,
        500L, QuotaPeriod.MONTHLY, List.of("10.0.0.0/8", "fd00::/8"), List.of("llama-*"),
        Instant.parse("2026-12-31T23:59:59Z"), new KeyLimits(2.5, 100L, null, 5), StoredKey.Source.ADMIN,
        Instant.parse("2026-11-27T10:00:00Z"));
    StoredKey bare = new StoredKey("cfg_b", "cd".repeat(32), "...", null, null, KeyStatus.ACTIVE, null, null, null, null,
        null, null, StoredKey.Source.CONFIG, Instant.parse("2026-11-27T10:00:00Z"));
    LocalDate d1 = LocalDate.of(2026, 11, 26);
    LocalDate d2 = LocalDate.of(2026, 11, 27);
    try (EmbeddedStore s = EmbeddedStore.open(dir)) {
      s.putKey(full);
      s.putKey(bare);
      s.putQuotaCounters(Map.of("key_a", new QuotaCounter(1_764_201_600L, 42)));
      s.addUsage("key_a", d1, 1, 10, 20);
      s.addUsage("key_a", d2, 2, 30, 40);
      s.addUsage("key_a", d2, 1, 1, 1);
      s.addUsage("key_b", d2, 5, 50, 50);
      s.spool().append("one".getBytes(StandardCharsets.UTF_8));
      long second = s.spool().append("two".getBytes(StandardCharsets.UTF_8));
      s.spool().remove(second - 1);
      s.commit();
    }
    try (EmbeddedStore s = EmbeddedStore.open(dir)) {
      assertThat(s.keys()).containsExactlyInAnyOrder(full, bare);
      assertThat(s.quotaCounters()).containsExactly(Map.entry("key_a", new QuotaCounter(1_764_201_600L, 42)));
      assertThat(s.usage("key_a", null, null)).containsExactly(
          new UsageTotal("key_a", d1, 1, 10, 20), new UsageTotal("key_a", d2, 3, 31, 41));
      assertThat(s.usage("key_a", d2, d2)).containsExactly(new UsageTotal("key_a", d2, 3, 31, 41));
      assertThat(s.usage(null, d2, null)).hasSize(2);
      assertThat(s.spool().size()).isEqualTo(1);
      assertThat(new String(s.spool().after(0, 10).get(0).getValue(), StandardCharsets.UTF_8)).isEqualTo("two");
      long next = s.spool().append("three".getBytes(StandardCharsets.UTF_8));
      assertThat(next).as("sequence numbers go on after a reopen").isGreaterThan(s.spool().after(0, 10).get(0).getKey());
      assertThat(s.deleteKey("key_a")).isTrue();
      assertThat(s.deleteKey("key_a")).isFalse();
      s.deleteQuotaCounter("key_a");
      assertThat(s.quotaCounters()).isEmpty();
    }
  }

  @Test
  void aSecondProcessOnTheSameDataDirIsToldWhy() {
    try (EmbeddedStore first = EmbeddedStore.open(dir)) {
      assertThatThrownBy(() -> EmbeddedStore.open(dir)).isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("is another llmproxy using this data_dir?");
    }
    assertThatThrownBy(() -> EmbeddedStore.open(Path.of("/proc/no-such-dir/data")))
        .isInstanceOf(IllegalStateException.class).hasMessageContaining("cannot create data_dir");
  }
}
