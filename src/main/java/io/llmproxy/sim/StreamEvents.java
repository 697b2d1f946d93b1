package io.llmproxy.sim;

import io.vertx.core.buffer.Buffer;

/**
 * The SSE events of one streamed response, each one complete ({@code data: ...\n\n}) and written
 * with its own {@code write}. The bytes that are the same for every event of a response are built
 * once per response, and those that are the same for every response once per {@link Profile}.
 * A returned buffer may be returned again (a word's event repeats each cycle): writing a Vert.x
 * buffer does not consume it.
 */
interface StreamEvents {

  Buffer DONE = Buffer.buffer("data: [DONE]\n\n");

  /** The event before the first token (the role chunk), or null. */
  Buffer opening();

  /** The event of token {@code index}; {@code last} carries the finish reason. */
  Buffer token(int index, boolean last);

  /** The usage-only event after the last token, or null. */
  Buffer usage();

  /** The closing event ({@code [DONE]}), or null. */
  Buffer done();

  /** Usage numbers, as vLLM orders them. */
  static String usageJson(int promptTokens, int completionTokens) {
    return "{\"prompt_tokens\":" + promptTokens + ",\"total_tokens\":"
        + (promptTokens + completionTokens) + ",\"completion_tokens\":" + completionTokens + "}";
  }

  static Buffer concat(byte[] a, byte[] b) {
    return Buffer.buffer(a.length + b.length).appendBytes(a).appendBytes(b);
  }

  /** {@code chat.completion.chunk} events: role chunk, one per token, usage, {@code [DONE]}. */
  final class Chat implements StreamEvents {
    private final Profile profile;
    private final String head;
    private final byte[] tokenPrefix;
    private final byte[][] lastTails;
    private final String usage;
    /** The events of the words, built on first use: a word's event is the same each cycle. */
    private final Buffer[] cache;

    Chat(Profile profile, long id, long created, String escapedModel, boolean finishLength,
        String usage) {
      this.profile = profile;
      this.head = "data: {\"id\":\"chatcmpl-" + id + "\",\"object\":\"chat.completion.chunk\","
          + "\"created\":" + created + ",\"model\":\"" + escapedModel + "\",\"choices\":[";
      this.tokenPrefix = Profile.bytes(head + "{\"index\":0,\"delta\":{\"content\":\"");
      this.lastTails = finishLength ? profile.chatTailsLength : profile.chatTailsStop;
      this.usage = usage;
      this.cache = new Buffer[profile.words.length];
    }

    @Override
    public Buffer opening() {
      return Buffer.buffer(head + "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
          + "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    }

    @Override
    public Buffer token(int index, boolean last) {
      if (last) {
        return concat(tokenPrefix, lastTails[index % lastTails.length]);
      }
      int word = index % cache.length;
      Buffer event = cache[word];
      if (event == null) {
        event = cache[word] = concat(tokenPrefix, profile.chatTails[word]);
      }
      return event;
    }

    @Override
    public Buffer usage() {
      return usage == null ? null : Buffer.buffer(head + "],\"usage\":" + usage + "}\n\n");
    }

    @Override
    public Buffer done() {
      return DONE;
    }
  }

  /** {@code text_completion} events: one per token, usage, {@code [DONE]}; no role chunk. */
  final class Completion implements StreamEvents {
    private final Profile profile;
    private final String head;
    private final byte[] tokenPrefix;
    private final byte[][] lastTails;
    private final String usage;
    private final Buffer[] cache;

    Completion(Profile profile, long id, long created, String escapedModel, boolean finishLength,
        String usage) {
      this.profile = profile;
      this.head = "data: {\"id\":\"cmpl-" + id + "\",\"object\":\"text_completion\",\"created\":"
          + created + ",\"model\":\"" + escapedModel + "\",\"choices\":[";
      this.tokenPrefix = Profile.bytes(head + "{\"index\":0,\"text\":\"");
      this.lastTails = finishLength ? profile.completionTailsLength : profile.completionTailsStop;
      this.usage = usage;
      this.cache = new Buffer[profile.words.length];
    }

    @Override
    public Buffer opening() {
      return null;
    }

    @Override
    public Buffer token(int index, boolean last) {
      if (last) {
        return concat(tokenPrefix, lastTails[index % lastTails.length]);
      }
      int word = index % cache.length;
      Buffer event = cache[word];
      if (event == null) {
        event = cache[word] = concat(tokenPrefix, profile.completionTails[word]);
      }
      return event;
    }

    @Override
    public Buffer usage() {
      return usage == null ? null : Buffer.buffer(head + "],\"usage\":" + usage + "}\n\n");
    }

    @Override
    public Buffer done() {
      return DONE;
    }
  }

  /**
   * TGI's {@code /generate_stream} events ({@code data:} without a space); the last one carries
   * {@code generated_text}. No {@code [DONE]}.
   */
  final class Tgi implements StreamEvents {
    private final Profile profile;
    private final int tokens;

    Tgi(Profile profile, int tokens) {
      this.profile = profile;
      this.tokens = tokens;
    }

    @Override
    public Buffer opening() {
      return null;
    }

    @Override
    public Buffer token(int index, boolean last) {
      String text = profile.escapedWords[index % profile.escapedWords.length];
      String generated = last ? "\"" + profile.escapedText(tokens) + "\"" : "null";
      return Buffer.buffer("data:{\"index\":" + index + ",\"token\":{\"id\":" + index
          + ",\"text\":\"" + text + "\",\"logprob\":-0.1,\"special\":false},\"generated_text\":"
          + generated + ",\"details\":null}\n\n");
    }

    @Override
    public Buffer usage() {
      return null;
    }

    @Override
    public Buffer done() {
      return null;
    }
  }
}
