package io.llmproxy.config;

import java.net.URI;
import java.time.Duration;

/** {@code usage_hook}. {@code url} is required when enabled, else may be null. Defaults: timeout 1s, retry 2. */
public record UsageHookConfig(boolean enabled, URI url, Duration timeout, int retry) {}
