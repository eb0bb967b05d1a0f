"""What the query and scale benchmarks report the same way about one step's process:
latency percentiles and memory.

The benchmark scripts run as files, not as the `bench` package, so a step imports this
where it runs: in its child process, which gets the repository on PYTHONPATH.
"""

from __future__ import annotations

import resource
import statistics
from pathlib import Path


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

    return {"p50": round(statistics.median(ordered), 1), "p95": at(0.95), "p99": at(0.99)}


def rss_mb(kind: str = "VmRSS") -> int:
    """This process's resident memory now: all of it (VmRSS), or its heap and other
    private memory (RssAnon), or file pages it has mapped and touched (RssFile: the
    page cache, which the kernel can reclaim and other processes share)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1]) // 1024
    return 0


def peak_rss_mb() -> int:
    """The most this process has held resident so far."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
