package io.llmproxy.testing;

import io.github.bucket4j.TimeMeter;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/** Bucket4j's time for rate limits, moved only by the test: buckets refill exactly when told. */
public final class ManualTimeMeter implements TimeMeter {
  private final AtomicLong nanos = new AtomicLong(1_000_000_000L);

  public void advance(Duration d) {
    nanos.addAndGet(d.toNanos());
  }

  @Override
  public long currentTimeNanos() {
    return nanos.get();
  }

  @Override
  public boolean isWallClockBased() {
    return false;
  }
}
