package io.llmproxy.store;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.h2.mvstore.Cursor;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;
import org.h2.mvstore.MVStoreException;

/**
 * The store on the local disk: one H2 MVStore file, {@code <data_dir>/llmproxy.mv}, locked by the
 * process that has it open. Keys are JSON in a map by id; quota counters and daily usage totals are
 * {@code long[]}; spooled usage events are bytes by sequence number. A commit writes the changes to
 * the file, so a process killed after it loses nothing (a power cut may lose what the OS had not yet
 * written; the file stays consistent either way).
 */
public final class EmbeddedStore implements Store {
  public static final String FILE_NAME = "llmproxy.mv";

  private final MVStore mv;
  private final MVMap<String, String> keys;
  private final MVMap<String, long[]> quota;
  private final MVMap<String, long[]> usage;
  private final MVMap<Long, byte[]> spoolMap;
  private final AtomicLong nextSeq;
  private final UsageSpool spool = new Spool();

  private EmbeddedStore(MVStore mv) {
    this.mv = mv;
    this.keys = mv.openMap("keys");
    this.quota = mv.openMap("quota");
    this.usage = mv.openMap("usage");
    this.spoolMap = mv.openMap("spool");
    Long last = spoolMap.lastKey();
    this.nextSeq = new AtomicLong(last == null ? 1 : last + 1);
  }

  /** Opens (or creates) the store in {@code dataDir}; fails with a clear message when another process has it. */
  public static EmbeddedStore open(Path dataDir) {
    try {
      Files.createDirectories(dataDir);
    } catch (IOException e) {
      // the message says it all (no cause: the startup error shows the innermost message)
      throw new IllegalStateException("cannot create data_dir " + dataDir + " (" + e.getClass().getSimpleName() + ": "
          + e.getMessage() + ")");
    }
    Path file = dataDir.resolve(FILE_NAME);
    try {
      return new EmbeddedStore(new MVStore.Builder().fileName(file.toString()).autoCommitBufferSize(1024).open());
    } catch (MVStoreException e) {
      throw new IllegalStateException("cannot open the store " + file + " (is another llmproxy using this data_dir?): "
          + e.getMessage());
    }
  }

  /** A store in memory only, for tests and for {@code auth.enabled: false} without a data_dir. */
  public static EmbeddedStore inMemory() {
    return new EmbeddedStore(new MVStore.Builder().open());
  }

  // ---- keys

  @Override
  public Collection<StoredKey> keys() {
    List<StoredKey> out = new ArrayList<>(keys.size());
    for (String json : keys.values()) {
      out.add(StoredKey.fromJson(new JsonObject(json)));
    }
    return out;
  }

  @Override
  public void putKey(StoredKey key) {
    keys.put(key.id(), key.toJson().encode());
  }

  @Override
  public boolean deleteKey(String id) {
    return keys.remove(id) != null;
  }

  // ---- quota

  @Override
  public Map<String, QuotaCounter> quotaCounters() {
    Map<String, QuotaCounter> out = new HashMap<>();
    for (Map.Entry<String, long[]> e : quota.entrySet()) {
      out.put(e.getKey(), new QuotaCounter(e.getValue()[0], e.getValue()[1]));
    }
    return out;
  }

  @Override
  public void putQuotaCounters(Map<String, QuotaCounter> counters) {
    counters.forEach((id, c) -> quota.put(id, new long[] {c.periodStart(), c.used()}));
  }

  @Override
  public void deleteQuotaCounter(String keyId) {
    quota.remove(keyId);
  }

  // ---- usage totals

  @Override
  public synchronized void addUsage(String keyId, LocalDate day, long requests, long promptTokens, long completionTokens) {
    String k = keyId + '|' + day;
    long[] v = usage.get(k);
    usage.put(k, v == null ? new long[] {requests, promptTokens, completionTokens}
        : new long[] {v[0] + requests, v[1] + promptTokens, v[2] + completionTokens});
  }

  @Override
  public List<UsageTotal> usage(String keyId, LocalDate from, LocalDate to) {
    List<UsageTotal> out = new ArrayList<>();
    Cursor<String, long[]> c = usage.cursor(keyId == null ? null : keyId + '|');
    while (c.hasNext()) {
      String k = c.next();
      int bar = k.lastIndexOf('|');
      String id = k.substring(0, bar);
      if (keyId != null && !id.equals(keyId)) {
        break;
      }
      LocalDate day = LocalDate.parse(k.substring(bar + 1));
      if ((from == null || !day.isBefore(from)) && (to == null || !day.isAfter(to))) {
        long[] v = c.getValue();
        out.add(new UsageTotal(id, day, v[0], v[1], v[2]));
      }
    }
    return out;
  }

  // ---- spool

  @Override
  public UsageSpool spool() {
    return spool;
  }

  private final class Spool implements UsageSpool {
    @Override
    public long append(byte[] event) {
      long seq = nextSeq.getAndIncrement();
      spoolMap.put(seq, event);
      return seq;
    }

    @Override
    public List<Map.Entry<Long, byte[]>> after(long after, int max) {
      List<Map.Entry<Long, byte[]>> out = new ArrayList<>(Math.min(max, 256));
      Cursor<Long, byte[]> c = spoolMap.cursor(after + 1);
      while (out.size() < max && c.hasNext()) {
        Long k = c.next();
        out.add(Map.entry(k, c.getValue()));
      }
      return out;
    }

    @Override
    public void remove(long seq) {
      spoolMap.remove(seq);
    }

    @Override
    public long size() {
      return spoolMap.sizeAsLong();
    }
  }

  // ---- lifecycle

  @Override
  public void commit() {
    if (!mv.isClosed()) {
      mv.commit();
    }
  }

  @Override
  public void close() {
    if (!mv.isClosed()) {
      mv.close();
    }
  }
}
