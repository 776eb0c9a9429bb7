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


_POSTMASTER = """
import subprocess, sys
print("ready", flush=True)
sys.stdin.readline()
subprocess.run([sys.executable, "-c", sys.argv[1], "0.3"], stdin=subprocess.DEVNULL,
               stdout=subprocess.DEVNULL, check=True)
print("done", flush=True)
sys.stdin.readline()
"""
"""Stands in for a postmaster: its CPU time is its child's, which it reaps (a backend)."""

_CHILD = """
import sys, time
end = time.process_time() + float(sys.argv[1])
while time.process_time() < end:
    pass
"""


def _start(*command: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", *command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _finish(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "done"


def _go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def test_each_process_is_charged_what_it_spent() -> None:
    server = _start(_BURNER, "0.4")
    postmaster = _start(_POSTMASTER, _CHILD)
    # Another "server" that stops during the scenario, as another test run's PostgreSQL
    # might: it must not be counted, in or out.
    bystander = _start(_POSTMASTER, _CHILD)
    try:
        meter = CpuMeter(server.pid, postmaster=postmaster.pid)
        started = time.perf_counter()
        for process in (server, postmaster, bystander):
            _go(process)
        _burn(0.2)  # the "client": this process
        for process in (server, postmaster, bystander):
            _finish(process)
        _go(bystander)
        bystander.wait()
        wall = time.perf_counter() - started
        # 100 units a second over the scenario: the figures are µs per unit.
        figures = meter.per_unit(100.0)
        units = 100.0 * wall
        spent = {name: us * units / 1e6 for name, us in figures.items()}
        assert 0.35 <= spent["cpu_us_server"] <= 0.6, spent
        assert 0.25 <= spent["cpu_us_postgres"] <= 0.5, spent
        assert 0.18 <= spent["cpu_us_client"] <= 0.4, spent
        assert spent["cpu_us_machine"] >= 0.9 * sum(
            spent[f"cpu_us_{part}"] for part in ("server", "postgres", "client")
        )
    finally:
        for process in (server, postmaster, bystander):
            process.kill()
            process.wait()


def test_cpu_seconds_grows_with_work() -> None:
    before = cpu_seconds(os.getpid())
    _burn(0.1)
    assert cpu_seconds(os.getpid()) - before >= 0.08


def test_budget_is_the_machine_s_cpu_shared_by_the_units() -> None:
    assert budget_us(30_000) == (os.cpu_count() or 1) * 1e6 / 30_000
