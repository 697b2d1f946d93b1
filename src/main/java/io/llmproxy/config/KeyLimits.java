package io.llmproxy.config;

/**
 * Per-key limits: {@code rate_limit.per_key}, and the overrides in {@code api_keys[].rate_limit}.
 * In {@code per_key} a null field means 0 (no limit); in an override a null field means "inherit
 * from per_key".
 */
public record KeyLimits(Double requestsPerSecond, Long requestsPerMinute, Long tokensPerMinute, Integer maxConcurrent) {}
