"""The benchmarks' CPU meter charges CPU time to the process that spent it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.cpu import CpuMeter, budget_us, cpu_seconds

_BURNER = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()
end = time.process_time() + float(sys.argv[1])
while time.process_time() < end:
    pass
print("done", flush=True)
sys.stdin.readline()
"""


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_each_process_is_charged_what_it_spent() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", _BURNER, "0.4"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        assert server.stdout.readline().strip() == "ready"
        meter = CpuMeter(server.pid)
        started = time.perf_counter()
        server.stdin.write("go\n")
        server.stdin.flush()
        _burn(0.2)  # the "client": this process
        assert server.stdout.readline().strip() == "done"
        wall = time.perf_counter() - started
        # 100 units a second over the scenario: the figures are µs per unit.
        figures = meter.per_unit(100.0)
        units = 100.0 * wall
        spent = {name: us * units / 1e6 for name, us in figures.items()}
        assert 0.35 <= spent["cpu_us_server"] <= 0.6, spent
        assert 0.18 <= spent["cpu_us_client"] <= 0.4, spent
        assert spent["cpu_us_machine"] >= 0.9 * (spent["cpu_us_server"] + spent["cpu_us_client"])
        assert spent["cpu_us_postgres"] >= 0.0
    finally:
        server.kill()
        server.wait()


def test_cpu_seconds_grows_with_work() -> None:
    before = cpu_seconds(os.getpid())
    _burn(0.1)
    assert cpu_seconds(os.getpid()) - before >= 0.08


def test_budget_is_the_machine_s_cpu_shared_by_the_units() -> None:
    assert budget_us(30_000) == (os.cpu_count() or 1) * 1e6 / 30_000
