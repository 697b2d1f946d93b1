package io.llmproxy.server;

import io.llmproxy.usage.UsageEvent;

/** Where each request's usage event goes, once, when the request ends: never blocks the event loop. */
@FunctionalInterface
interface UsageLedger {
  void record(UsageEvent event);
}
