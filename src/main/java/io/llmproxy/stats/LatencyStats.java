package io.llmproxy.stats;

import static java.util.Objects.requireNonNull;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * Latency statistics per backend and model (SPEC §6.4): TTFT for streams, total latency otherwise,
 * each in a sliding {@link LatencyWindow} and a {@link PeakEwma}. Recorded by the upstream
 * attempts, read by the hedging policy (percentiles, sample counts) and by the
 * {@code latency_based} balancer (peak EWMA). Model names are bounded: past {@link #MAX_MODELS}
 * distinct ones per backend, the rest share one entry.
 */
public final class LatencyStats {
  static final int MAX_MODELS = 200;
  static final String OTHER = "\u0000other";

  /** Which latency: time to first token of a stream, or a whole non-streaming response. */
  public enum Kind { TTFT, LATENCY }

  /** The statistics of one backend, model and kind. */
  public static final class Entry {
    private final LatencyWindow window;
    private final PeakEwma ewma;

    Entry(int slots, long slotNanos, long tauNanos) {
      this.window = new LatencyWindow(slots, slotNanos);
      this.ewma = new PeakEwma(tauNanos);
    }

    public LatencyWindow window() {
      return window;
    }

    public PeakEwma ewma() {
      return ewma;
    }
  }

  private record Key(String backend, String model, Kind kind) {
    /** The model as listeners and visitors see it: {@code "other"} past the bound. */
    String label() {
      return model == OTHER ? "other" : model;
    }
  }

  private final Map<Key, Entry> entries = new ConcurrentHashMap<>();
  private final Map<String, Integer> modelsPerBackend = new ConcurrentHashMap<>();
  private final LongSupplier nanoClock;
  private final int slots;
  private final long slotNanos;
  private final long tauNanos;
  /** Hears each new entry once (the hedge-threshold gauge is registered there). */
  private final EntryVisitor listener;

  /** Sees an entry: each new one (the constructor's listener), or each of {@link #forEach}. */
  public interface EntryVisitor {
    /** @param model the model name as recorded; {@code ""} for requests naming none, {@code "other"} past the bound */
    void visit(String backend, String model, Kind kind, Entry entry);
  }

  /** 3 slots of 10 s (a 30 s window), peak EWMA with τ = 10 s. */
  public LatencyStats(LongSupplier nanoClock, EntryVisitor listener) {
    this(nanoClock, 3, 10_000_000_000L, 10_000_000_000L, listener);
  }

  public LatencyStats(LongSupplier nanoClock, int slots, long slotNanos, long tauNanos, EntryVisitor listener) {
    this.nanoClock = requireNonNull(nanoClock, "nanoClock");
    this.slots = slots;
    this.slotNanos = slotNanos;
    this.tauNanos = tauNanos;
    this.listener = requireNonNull(listener, "listener");
  }

  public long now() {
    return nanoClock.getAsLong();
  }

  /** The entry for a backend, model and kind, created on first use. */
  public Entry entry(String backend, String model, Kind kind) {
    Key key = new Key(backend, model == null ? "" : model, kind);
    Entry e = entries.get(key);
    if (e != null) {
      return e;
    }
    if (modelsPerBackend.merge(backend, 1, Integer::sum) > MAX_MODELS * Kind.values().length) {
      modelsPerBackend.merge(backend, -1, Integer::sum);
      key = new Key(backend, OTHER, kind);
    }
    Key k = key;
    return entries.computeIfAbsent(k, x -> {
      Entry created = new Entry(slots, slotNanos, tauNanos);
      listener.visit(k.backend(), k.label(), k.kind(), created);
      return created;
    });
  }

  /** Drops a backend's entries (a reload removed it, or changed its URL). */
  public void forget(String backend) {
    entries.keySet().removeIf(k -> k.backend().equals(backend));
    modelsPerBackend.remove(backend);
  }

  /** Visits every entry, in no particular order (for the admin API). */
  public void forEach(EntryVisitor visitor) {
    entries.forEach((k, e) -> visitor.visit(k.backend(), k.label(), k.kind(), e));
  }

  /** Records one observed latency (or, for a cancelled loser, its elapsed time as a lower bound). */
  public void record(String backend, String model, Kind kind, long latencyNanos) {
    long now = now();
    Entry e = entry(backend, model, kind);
    e.window().record(latencyNanos, now);
    e.ewma().observe(latencyNanos, now);
  }
}
