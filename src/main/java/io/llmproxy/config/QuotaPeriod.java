package io.llmproxy.config;

/** {@code quota_reset_period}: the quota resets at these UTC boundaries. */
public enum QuotaPeriod { DAILY, WEEKLY, MONTHLY, NEVER }
