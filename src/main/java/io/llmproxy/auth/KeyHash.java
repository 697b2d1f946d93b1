package io.llmproxy.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.HexFormat;

/** How keys are kept at rest (SPEC §9): SHA-256, hex; and how new ones are made. */
public final class KeyHash {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final char[] ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".toCharArray();
  private static final ThreadLocal<MessageDigest> SHA256 = ThreadLocal.withInitial(() -> {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  });

  private KeyHash() {}

  public static byte[] sha256(String key) {
    return SHA256.get().digest(key.getBytes(StandardCharsets.UTF_8));
  }

  public static String sha256Hex(String key) {
    return HexFormat.of().formatHex(sha256(key));
  }

  /**
   * Enough to tell keys apart in a list without giving away what is secret: the last 4 characters,
   * after the well-known {@code sk-llmproxy-} prefix when the key has it.
   */
  public static String hint(String key) {
    if (key.length() <= 16) {
      return "...";
    }
    String prefix = key.startsWith("sk-llmproxy-") ? "sk-llmproxy-" : "";
    return prefix + "..." + key.substring(key.length() - 4);
  }

  /** A new key: {@code sk-llmproxy-} and 40 random characters (about 238 bits). */
  public static String newKey() {
    StringBuilder sb = new StringBuilder("sk-llmproxy-");
    for (int i = 0; i < 40; i++) {
      sb.append(ALPHABET[RANDOM.nextInt(ALPHABET.length)]);
    }
    return sb.toString();
  }

  /** A new key id: {@code key_} and 16 random characters. */
  public static String newId() {
    StringBuilder sb = new StringBuilder("key_");
    for (int i = 0; i < 16; i++) {
      sb.append(ALPHABET[RANDOM.nextInt(ALPHABET.length)]);
    }
    return sb.toString();
  }
}
