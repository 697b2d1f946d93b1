package io.llmproxy.testing;

import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import java.util.List;

/** Reading what a logback {@link ListAppender} captured while the gateway's threads still log. */
public final class Logs {
  private Logs() {}

  /**
   * A copy of the events captured so far. The appender adds to a plain list under its own lock
   * (logback's {@code AppenderBase.doAppend} is synchronized), so the copy is taken under it too:
   * iterating the list itself while an event loop logs throws ConcurrentModificationException.
   */
  public static List<ILoggingEvent> snapshot(ListAppender<ILoggingEvent> appender) {
    synchronized (appender) {
      return List.copyOf(appender.list);
    }
  }
}
