package io.llmproxy.proxy;

/** Token counts from a response's {@code usage} object; -1 where the backend gave none. */
public record Usage(long promptTokens, long completionTokens) {
  public static final Usage NONE = new Usage(-1, -1);

  public boolean known() {
    return promptTokens >= 0 || completionTokens >= 0;
  }
}
