package io.llmproxy.sim;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * One {@link SimulatorOptions} with everything derived from it computed once: the token texts, the
 * constant tails of the SSE events, the {@code /v1/models} body. Swapped whole when the options
 * change.
 *
 * <p>Token texts: token {@code i} (from 0) is {@code WORDS[i % 8]}, the words being {@code " Hello"},
 * {@code " from"}, {@code " <name>"}, {@code ","}, {@code " the"}, {@code " simulated"},
 * {@code " backend"}, {@code "."}. Sixteen tokens from a simulator named {@code sim} read
 * {@code " Hello from sim, the simulated backend. Hello from sim, the simulated backend."}
 */
final class Profile {

  /** {@code created} of every model in {@code /v1/models}: 2024-01-01T00:00:00Z. */
  static final long MODELS_CREATED = 1_704_067_200L;

  final SimulatorOptions options;
  final Set<String> models;
  final String defaultModel;

  /** Raw and JSON-escaped token texts, in cycle order. */
  final String[] words;
  final String[] escapedWords;

  /** Chat chunk bytes after {@code "delta":{"content":"}: the word and the rest of the event. */
  final byte[][] chatTails;
  final byte[][] chatTailsLength;
  final byte[][] chatTailsStop;
  /** Completion chunk bytes after {@code "text":"}. */
  final byte[][] completionTails;
  final byte[][] completionTailsLength;
  final byte[][] completionTailsStop;

  final byte[] modelsBody;
  final String escapedName;

  private final long ttftNanos;
  private final long itlNanos;
  private final long jitterNanos;
  private final long tailNanos;

  Profile(SimulatorOptions options) {
    this.options = options;
    this.models = Set.copyOf(options.models());
    this.defaultModel = options.models().get(0);
    this.escapedName = escape(options.name());
    this.words = new String[] {
        " Hello", " from", " " + options.name(), ",", " the", " simulated", " backend", "."};
    this.escapedWords = new String[words.length];
    chatTails = new byte[words.length][];
    chatTailsLength = new byte[words.length][];
    chatTailsStop = new byte[words.length][];
    completionTails = new byte[words.length][];
    completionTailsLength = new byte[words.length][];
    completionTailsStop = new byte[words.length][];
    for (int i = 0; i < words.length; i++) {
      String w = escape(words[i]);
      escapedWords[i] = w;
      chatTails[i] = bytes(w + "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
      chatTailsLength[i] = bytes(w + "\"},\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n");
      chatTailsStop[i] = bytes(w + "\"},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n");
      completionTails[i] =
          bytes(w + "\",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}]}\n\n");
      completionTailsLength[i] =
          bytes(w + "\",\"logprobs\":null,\"finish_reason\":\"length\",\"stop_reason\":null}]}\n\n");
      completionTailsStop[i] =
          bytes(w + "\",\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null}]}\n\n");
    }
    StringBuilder sb = new StringBuilder("{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < options.models().size(); i++) {
      String m = escape(options.models().get(i));
      if (i > 0) {
        sb.append(',');
      }
      sb.append("{\"id\":\"").append(m).append("\",\"object\":\"model\",\"created\":")
          .append(MODELS_CREATED).append(",\"owned_by\":\"vllm\",\"root\":\"").append(m)
          .append("\",\"parent\":null,\"max_model_len\":8192}");
    }
    modelsBody = bytes(sb.append("]}").toString());
    ttftNanos = options.ttft().toNanos();
    itlNanos = options.itl().toNanos();
    jitterNanos = options.jitter().toNanos();
    tailNanos = options.tailDelay().toNanos();
  }

  String word(int token) {
    return words[token % words.length];
  }

  /** The concatenated text of {@code count} tokens, JSON-escaped. */
  String escapedText(int count) {
    StringBuilder sb = new StringBuilder(count * 8);
    for (int i = 0; i < count; i++) {
      sb.append(escapedWords[i % escapedWords.length]);
    }
    return sb.toString();
  }

  /** This request's ttft: jittered, plus the tail delay with {@code tailProbability}. */
  long ttftNanos(ThreadLocalRandom random) {
    long t = jittered(ttftNanos, random);
    if (options.tailProbability() > 0 && random.nextDouble() < options.tailProbability()) {
      t += tailNanos;
    }
    return t;
  }

  /** One jittered inter-token latency. */
  long itlNanos(ThreadLocalRandom random) {
    return jittered(itlNanos, random);
  }

  /** The time to produce {@code tokens} tokens when not streaming. */
  long totalNanos(ThreadLocalRandom random, int tokens) {
    long t = ttftNanos(random);
    if (jitterNanos == 0) {
      return t + (tokens - 1) * itlNanos;
    }
    for (int i = 1; i < tokens; i++) {
      t += itlNanos(random);
    }
    return t;
  }

  private long jittered(long base, ThreadLocalRandom random) {
    if (jitterNanos == 0) {
      return base;
    }
    return Math.max(0, base + random.nextLong(-jitterNanos, jitterNanos + 1));
  }

  static String escape(String s) {
    return new String(JsonStringEncoder.getInstance().quoteAsString(s));
  }

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
