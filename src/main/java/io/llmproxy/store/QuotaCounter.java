package io.llmproxy.store;

/**
 * A key's quota use in one period.
 *
 * @param periodStart  the period's start, epoch seconds (UTC boundary); 0 for {@code never}
 * @param used         tokens counted in it
 */
public record QuotaCounter(long periodStart, long used) {}
