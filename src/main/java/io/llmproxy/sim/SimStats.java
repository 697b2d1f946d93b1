package io.llmproxy.sim;

/**
 * Counters of a {@link Simulator} since it started or was last {@link Simulator#reset() reset}.
 *
 * @param served requests received, on any path but {@code /sim/stats}
 * @param completed responses ended, whatever their status
 * @param disconnected requests whose client connection closed before the response ended
 * @param failed responses ended with a status of 400 or more (injected failures included)
 * @param hung requests chosen by {@code hangRate} never to be answered
 * @param connectionsOpened connections accepted
 * @param connectionsClosed connections closed, by either side
 * @param openConnections connections open now (not affected by a reset)
 */
public record SimStats(
    long served,
    long completed,
    long disconnected,
    long failed,
    long hung,
    long connectionsOpened,
    long connectionsClosed,
    long openConnections) {}
