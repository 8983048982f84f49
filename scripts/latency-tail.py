#!/usr/bin/env python3
"""Where a load run's latency tail happened, from `strata-miner load --timeline FILE`
(or `TIMELINE=FILE scripts/bench-proxy.sh ...`):

    scripts/latency-tail.py FILE [WINDOW_MS]

Prints the run's p50/p99, how the shares slower than the p99 spread over windows of
WINDOW_MS (default 100): what part of them the worst 1, 3 and 10 % of the windows hold
(an even spread would give 1, 3 and 10 %), the worst windows, and the p99 without the
first 8 s (the connection ramp and the first vardiff steps).
"""
import sys
from collections import Counter


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    window_ms = float(sys.argv[2]) if len(sys.argv) > 2 else 100.0
    rows = []
    with open(sys.argv[1]) as f:
        for line in f:
            at_ms, latency_us = line.split()
            rows.append((float(at_ms), int(latency_us)))
    if not rows:
        sys.exit("no shares in the timeline")
    lat = sorted(l for _, l in rows)
    n = len(lat)

    def pct(sorted_us, q):
        return sorted_us[min(len(sorted_us) - 1, int(q * len(sorted_us)))] / 1000

    p99_us = lat[min(n - 1, int(0.99 * n))]
    print(f"shares {n}  p50 {pct(lat, 0.5):.3f} ms  p99 {p99_us / 1000:.3f} ms")
    over = Counter(int(at // window_ms) for at, l in rows if l > p99_us)
    windows = int(rows[-1][0] // window_ms) + 1
    total = sum(over.values())
    worst = over.most_common()
    parts = []
    for share in (0.01, 0.03, 0.10):
        k = max(1, round(share * windows))
        parts.append(f"worst {share:.0%} ({k}): {sum(c for _, c in worst[:k]) / total:.0%}")
    print(f"shares over the p99 ({total}) by {window_ms:g} ms window of {windows}: " + ", ".join(parts))
    print("worst windows (start s: shares over the p99): " + ", ".join(
        f"{w * window_ms / 1000:.1f}: {c}" for w, c in worst[:10]))
    steady = sorted(l for at, l in rows if at >= 8000)
    if steady:
        print(f"after 8 s: shares {len(steady)}  p50 {pct(steady, 0.5):.3f} ms  p99 {pct(steady, 0.99):.3f} ms")


if __name__ == "__main__":
    main()
