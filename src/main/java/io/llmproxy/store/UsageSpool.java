package io.llmproxy.store;

import java.util.List;
import java.util.Map;

/**
 * Usage events waiting for the webhook, in arrival order. An event appended here is durable once
 * {@link Store#commit} returns; it stays until {@link #remove} after its delivery.
 */
public interface UsageSpool {
  /** Appends an event (its JSON); returns its sequence number. */
  long append(byte[] event);

  /** Up to {@code max} events with a sequence number above {@code after}, oldest first. */
  List<Map.Entry<Long, byte[]>> after(long after, int max);

  /** Forgets a delivered event. */
  void remove(long seq);

  /** Events waiting. */
  long size();
}
