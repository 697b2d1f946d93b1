package io.llmproxy.store;

import java.time.LocalDate;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * What the gateway keeps across restarts (SPEC §9): API keys (hashed), quota counters, usage totals
 * per key and day, and the usage spool. Two implementations: {@link EmbeddedStore} on the local disk,
 * and Redis (the scale-out issue). Thread-safe. Writes become durable at {@link #commit}.
 */
public interface Store extends AutoCloseable {
  Collection<StoredKey> keys();

  void putKey(StoredKey key);

  /** False when there was no such key. */
  boolean deleteKey(String id);

  Map<String, QuotaCounter> quotaCounters();

  void putQuotaCounters(Map<String, QuotaCounter> counters);

  void deleteQuotaCounter(String keyId);

  void addUsage(String keyId, LocalDate day, long requests, long promptTokens, long completionTokens);

  /** Totals per key and day between {@code from} and {@code to} (inclusive); {@code keyId} null = every key. */
  List<UsageTotal> usage(String keyId, LocalDate from, LocalDate to);

  UsageSpool spool();

  /** Makes every write so far durable. */
  void commit();

  /** Commits and closes. */
  @Override
  void close();
}
