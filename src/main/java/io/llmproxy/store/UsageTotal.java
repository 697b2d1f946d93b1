package io.llmproxy.store;

import java.time.LocalDate;

/** One key's usage on one UTC day. */
public record UsageTotal(String keyId, LocalDate day, long requests, long promptTokens, long completionTokens) {}
