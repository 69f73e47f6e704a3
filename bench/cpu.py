"""The machine's busy CPU time, sampled from ``/proc/stat``: how many of the cores a phase kept busy.

A phase's wall time says how long it took; its CPU seconds (every process of the machine: the
worker, PostgreSQL's and MariaDB's backends, the stand-ins) say how much work it made the machine
do. ``cpu_s / wall_s`` is the cores it kept busy on average: near the machine's core count, the
phase is bound by the cores and only less work makes it faster; well below, cores idled.

    meter = CpuMeter(); meter.start()
    ...                                    # timestamps from time.time()
    meter.busy(t0, t1)                     # CPU seconds between two timestamps
    meter.stop()
"""

from __future__ import annotations

import bisect
import os
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> tuple[float, float]:
    """The machine's busy and iowait CPU seconds since boot (all cores): user, nice, system, irq,
    softirq and steal count as busy (steal: the host ran another guest on our core)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICK, iowait / TICK


class CpuMeter:
    """Samples busy_seconds() every ``interval`` seconds in a thread; ``busy(t0, t1)`` interpolates."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.times: list[float] = []
        self.busy_s: list[float] = []
        self.iowait_s: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def _sample(self) -> None:
        busy, iowait = busy_seconds()
        self.times.append(time.time())
        self.busy_s.append(busy)
        self.iowait_s.append(iowait)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> CpuMeter:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _at(self, series: list[float], t: float) -> float:
        i = bisect.bisect_left(self.times, t)
        if i <= 0:
            return series[0]
        if i >= len(self.times):
            return series[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        w = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
        return series[i - 1] + w * (series[i] - series[i - 1])

    def busy(self, t0: float, t1: float) -> float:
        """CPU seconds the machine was busy between two time.time() stamps."""
        return self._at(self.busy_s, t1) - self._at(self.busy_s, t0)

    def iowait(self, t0: float, t1: float) -> float:
        return self._at(self.iowait_s, t1) - self._at(self.iowait_s, t0)
