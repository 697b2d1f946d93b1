package io.llmproxy.auth;

import io.llmproxy.config.ApiKeyConfig;
import io.llmproxy.config.AuthConfig;
import io.llmproxy.config.KeyLimits;
import io.llmproxy.store.Store;
import io.llmproxy.store.StoredKey;
import io.llmproxy.store.StoredKey.Source;
import java.security.MessageDigest;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Every API key, from the config file and from the admin API, held in memory by hash and written
 * through to the {@link Store}. The config file is authoritative for its own keys: at start they are
 * written over their stored copies, and stored config keys no longer in the file are removed. Keys
 * made through the admin API live in the store only. A change is visible to the next request.
 */
public final class KeyRegistry {
  private static final Logger LOG = LoggerFactory.getLogger(KeyRegistry.class);

  private final Store store;
  private final AuthConfig.KeyDefaults defaults;
  /** {@code rate_limit.per_key}: the limits of a key that sets none of its own; a reload may change them. */
  private volatile KeyLimits perKey;
  private final Clock clock;
  private final Map<String, ApiKey> byHash = new ConcurrentHashMap<>();
  private final Map<String, ApiKey> byId = new ConcurrentHashMap<>();

  public KeyRegistry(Store store, AuthConfig auth, KeyLimits perKey, List<ApiKeyConfig> configKeys, Clock clock) {
    this.store = store;
    this.defaults = auth.defaults();
    this.perKey = perKey;
    this.clock = clock;
    Map<String, StoredKey> stored = new HashMap<>();
    for (StoredKey k : store.keys()) {
      stored.put(k.hash(), k);
    }
    SyncResult r = sync(stored, configKeys);
    stored.values().forEach(this::indexOrLeaveOut);
    LOG.info("{} API keys ({} from the config file, {} from the admin API){}", byId.size(), r.inConfig(),
        byId.size() - r.inConfig(), r.removed() > 0 ? "; " + r.removed() + " no longer in the config file removed" : "");
  }

  private record SyncResult(int inConfig, int removed) {}

  /**
   * Writes the config file's keys over their stored copies in {@code stored} (by hash) and in the
   * store, and removes the stored config keys no longer in the file; an admin key the file now
   * defines becomes a config key.
   */
  private SyncResult sync(Map<String, StoredKey> stored, List<ApiKeyConfig> configKeys) {
    Set<String> inConfig = new HashSet<>();
    for (ApiKeyConfig c : configKeys) {
      String hash = KeyHash.sha256Hex(c.key());
      inConfig.add(hash);
      StoredKey old = stored.get(hash);
      // A random id (kept across restarts): an id derived from the hash would let anyone who sees
      // it (usage events, the admin API) test guesses of the key offline.
      String id = old != null && old.source() == Source.CONFIG ? old.id() : "cfg_" + KeyHash.newId().substring(4);
      StoredKey k = StoredKey.draft(c).withIdentity(id, hash, KeyHash.hint(c.key()), Source.CONFIG,
          old == null ? clock.instant() : old.createdAt());
      if (old != null && old.source() == Source.ADMIN) {
        store.deleteKey(old.id()); // the file now defines it
      }
      store.putKey(k);
      stored.put(hash, k);
    }
    int removed = 0;
    for (StoredKey k : List.copyOf(stored.values())) {
      if (k.source() == Source.CONFIG && !inConfig.contains(k.hash())) {
        store.deleteKey(k.id());
        stored.remove(k.hash());
        removed++;
      }
    }
    store.commit();
    return new SyncResult(inConfig.size(), removed);
  }

  /**
   * A config reload's {@code api_keys}: the file's keys replace the config keys held now, as at a
   * start. Keys from the admin API stay, unless the file now defines one of them; a key removed
   * from the file is refused from the next request on. A key whose rules cannot be used is left out
   * and said so (the config's validation makes that unlikely).
   *
   * @return the ids of the keys no longer held, whose counters may go
   */
  public synchronized List<String> reload(List<ApiKeyConfig> configKeys) {
    Map<String, StoredKey> stored = new HashMap<>();
    for (ApiKey k : byId.values()) {
      stored.put(k.stored().hash(), k.stored());
    }
    SyncResult r = sync(stored, configKeys);
    // the new and changed first, then the gone: a key the file keeps is never missing in between
    for (StoredKey k : stored.values()) {
      ApiKey held = byId.get(k.id());
      if (held == null || !held.stored().equals(k)) {
        indexOrLeaveOut(k);
      }
    }
    List<String> gone = new ArrayList<>();
    for (ApiKey k : List.copyOf(byId.values())) {
      StoredKey now = stored.get(k.stored().hash());
      if (now == null || !now.id().equals(k.id())) {
        byId.remove(k.id());
        byHash.remove(k.stored().hash(), k);
        gone.add(k.id());
      }
    }
    LOG.info("API keys reloaded: {} from the config file, {} from the admin API{}", r.inConfig(),
        byId.size() - r.inConfig(), r.removed() > 0 ? "; " + r.removed() + " no longer in the config file removed" : "");
    return gone;
  }

  /**
   * A config reload's {@code rate_limit.per_key}: every key held is rebuilt with the new defaults,
   * which its next request is limited by (its requests in flight still count).
   */
  public synchronized void perKeyLimits(KeyLimits limits) {
    perKey = limits;
    for (ApiKey k : List.copyOf(byId.values())) {
      indexOrLeaveOut(k.stored());
    }
  }

  /**
   * Holds a stored key; one whose rules cannot be used is left out (and any older copy of it
   * dropped), and said so: one unreadable key must not keep the gateway from starting.
   */
  private void indexOrLeaveOut(StoredKey k) {
    try {
      index(new ApiKey(k, defaults, perKey));
    } catch (RuntimeException e) {
      byId.remove(k.id());
      byHash.remove(k.hash());
      LOG.error("API key {} ({}) is left out: {}", k.id(), k.name(), e.getMessage());
    }
  }

  private void index(ApiKey key) {
    byHash.put(key.stored().hash(), key);
    byId.put(key.id(), key);
  }

  /**
   * The key with this secret, or null. The lookup is by its SHA-256, and the stored hash is then
   * compared in constant time; the secret itself is never compared or kept.
   */
  public ApiKey find(String secret) {
    byte[] h = KeyHash.sha256(secret);
    ApiKey k = byHash.get(java.util.HexFormat.of().formatHex(h));
    return k != null && MessageDigest.isEqual(k.hash(), h) ? k : null;
  }

  public ApiKey get(String id) {
    return byId.get(id);
  }

  /** Every key, oldest first. */
  public List<ApiKey> list() {
    List<ApiKey> all = new ArrayList<>(byId.values());
    all.sort(Comparator.comparing((ApiKey k) -> k.stored().createdAt()).thenComparing(ApiKey::id));
    return all;
  }

  /** A new key and its secret, shown this once. */
  public record Created(ApiKey key, String secret) {}

  /** Why an admin change was refused; the message is for the caller. */
  public static final class Conflict extends RuntimeException {
    Conflict(String message) {
      super(message, null, false, false);
    }
  }

  /**
   * Stores a new key from the admin API. {@code draft} gives every field but id, hash, hint, source and
   * creation time; {@code secret} null makes one.
   */
  public synchronized Created create(StoredKey draft, String secret) {
    String s = secret == null ? KeyHash.newKey() : secret;
    String hash = KeyHash.sha256Hex(s);
    if (byHash.containsKey(hash)) {
      throw new Conflict("A key with this value exists already.");
    }
    StoredKey k = draft.withIdentity(KeyHash.newId(), hash, KeyHash.hint(s), Source.ADMIN, clock.instant());
    ApiKey key = new ApiKey(k, defaults, perKey); // fails here, before anything is stored, if a rule cannot be used
    store.putKey(k);
    store.commit();
    index(key);
    LOG.info("API key {} created ({}, user {})", k.id(), k.name(), k.userId());
    return new Created(key, s);
  }

  /** Replaces an admin key's fields (id, hash, hint, source and creation time are kept); null when there is no such key. */
  public synchronized ApiKey update(String id, StoredKey fields) {
    ApiKey old = mutable(id);
    if (old == null) {
      return null;
    }
    StoredKey o = old.stored();
    StoredKey k = fields.withIdentity(o.id(), o.hash(), o.hint(), o.source(), o.createdAt());
    ApiKey key = new ApiKey(k, defaults, perKey);
    store.putKey(k);
    store.commit();
    index(key);
    LOG.info("API key {} updated ({}, user {}, {})", k.id(), k.name(), k.userId(), k.status());
    return key;
  }

  /** Revokes an admin key at once; false when there is none with this id. */
  public synchronized boolean delete(String id) {
    ApiKey k = mutable(id);
    if (k == null) {
      return false;
    }
    store.deleteKey(id);
    store.commit();
    byId.remove(id);
    byHash.remove(k.stored().hash());
    LOG.info("API key {} revoked ({}, user {})", id, k.name(), k.userId());
    return true;
  }

  private ApiKey mutable(String id) {
    ApiKey k = byId.get(id);
    if (k == null) {
      return null;
    }
    if (k.stored().source() == Source.CONFIG) {
      throw new Conflict("Key " + id + " is defined in the config file; change it there.");
    }
    return k;
  }
}
