package io.llmproxy.config;

/** {@code load_balance_strategy}; written with underscores or dashes, in any case. */
public enum Strategy {
  ROUND_ROBIN,
  WEIGHTED_ROUND_ROBIN,
  LEAST_CONNECTIONS,
  LATENCY_BASED,
  RANDOM
}
