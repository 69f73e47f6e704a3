"""The bench's CPU meter (bench/cpu.py): what it reads from /proc/stat and how it splits the
samples between two timestamps."""

from __future__ import annotations

import time

import pytest

from bench.cpu import CpuMeter, busy_seconds


def test_busy_between_two_stamps_is_interpolated_between_the_samples():
    meter = CpuMeter()
    meter.times, meter.busy_s, meter.iowait_s = [100.0, 101.0, 102.0], [10.0, 11.5, 13.5], [0.0, 0.0, 0.5]
    assert meter.busy(100.0, 102.0) == pytest.approx(3.5)
    assert meter.busy(100.5, 101.5) == pytest.approx(0.75 + 1.0)
    assert meter.iowait(101.0, 102.0) == pytest.approx(0.5)
    # before the first sample or after the last: clamped to them, never extrapolated
    assert meter.busy(90.0, 110.0) == pytest.approx(3.5)


def test_a_spinning_thread_shows_as_about_one_busy_core():
    meter = CpuMeter(interval=0.05).start()
    t0 = time.time()
    while time.time() - t0 < 1.0:
        pass
    t1 = time.time()
    meter.stop()
    busy = meter.busy(t0, t1)
    # this process kept one core busy; other processes of the machine may add to it
    assert 0.8 <= busy <= (t1 - t0) * 64
    assert busy_seconds()[0] > 0
