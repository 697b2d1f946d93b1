package io.llmproxy.routing;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Extra attempts at most budget_percent of the last 10 s of requests, plus a floor a second. */
class HedgeBudgetTest {
  private static final long S = 1_000_000_000L;

  @Test
  void extrasStayWithinThePercentagePlusTheFloor() {
    long[] now = {100 * S};
    HedgeBudget budget = new HedgeBudget(10, () -> now[0]);
    int allowed = 0;
    for (int i = 0; i < 1_000; i++) {
      budget.request();
      if (budget.tryExtra()) {
        allowed++;
      }
    }
    // 10% of 1,000 plus the floor of 1 a second over the 10 s window
    assertThat(allowed).isEqualTo(100 + 10);
    assertThat(budget.tryExtra()).isFalse();
  }

  @Test
  void aQuietGatewayStillHasTheFloor() {
    long[] now = {100 * S};
    HedgeBudget budget = new HedgeBudget(0, () -> now[0]);
    int allowed = 0;
    for (int i = 0; i < 50; i++) {
      if (budget.tryExtra()) {
        allowed++;
      }
    }
    assertThat(allowed).isEqualTo(10);
  }

  @Test
  void theWindowMovesOn() {
    long[] now = {100 * S};
    HedgeBudget budget = new HedgeBudget(10, () -> now[0]);
    for (int i = 0; i < 100; i++) {
      budget.request();
    }
    int first = 0;
    while (budget.tryExtra()) {
      first++;
    }
    assertThat(first).isEqualTo(20);
    now[0] += 11 * S; // everything of the first second has left the window
    assertThat(budget.tryExtra()).isTrue();
    int second = 1;
    while (budget.tryExtra()) {
      second++;
    }
    assertThat(second).as("only the floor: no requests in the window").isEqualTo(10);
  }
}
