"""Where the CPU goes during a scenario: the server, PostgreSQL, the client, the machine.

On a two-core machine a throughput target is also a CPU budget: 30,000 transfers/s
leaves 2 / 30,000 s = 66.7 µs of CPU per transfer for everything that runs, client
included. A :class:`CpuMeter` reads ``/proc`` before and after a scenario and divides
each process's CPU time by the work done, so a report can say which part spends the
budget, not only that the target was missed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _postgres_seconds(postmaster: int | None) -> float:
    """CPU time of one PostgreSQL server: its postmaster ``postmaster`` and every live child,
    with the time of children that have exited (the postmaster inherits it when it reaps
    them). ``None``: every ``postgres`` process on the machine, for a server whose
    postmaster is unknown; then another server stopping meanwhile takes its time away."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, rest = (entry / "stat").read_text().split("(", 1)[1].rsplit(")", 1)
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        fields = rest.split()
        if postmaster is None:
            counted = name == "postgres"
        else:
            counted = int(entry.name) == postmaster or int(fields[1]) == postmaster
        if counted:
            total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / _TICKS


def _machine_seconds() -> float:
    """CPU time every core spent busy (user, nice, system, irq, softirq)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in first[1:8])
    return (user + nice + system + irq + softirq) / _TICKS


@dataclass(frozen=True, slots=True)
class _Reading:
    server: float
    sealer: float
    postgres: float
    client: float
    machine: float
    wall: float


class CpuMeter:
    """CPU time spent between :meth:`start` and :meth:`per_unit` by the server process
    ``server_pid``, by the ledger's sealer process ``sealer`` where it runs on its own, by
    the PostgreSQL server whose postmaster is ``postmaster``, by this (client) process and
    by the whole machine.

    The machine's figure includes everything else running, so it is at least the sum of
    the three; a large gap means something else took CPU during the scenario.
    """

    def __init__(
        self, server_pid: int, *, postmaster: int | None, sealer: int | None = None
    ) -> None:
        self._server_pid = server_pid
        self._sealer_pid = sealer
        self._postmaster = postmaster
        self._started = self._read()

    def _read(self) -> _Reading:
        return _Reading(
            server=cpu_seconds(self._server_pid),
            sealer=0.0 if self._sealer_pid is None else cpu_seconds(self._sealer_pid),
            postgres=_postgres_seconds(self._postmaster),
            client=cpu_seconds(os.getpid()),
            machine=_machine_seconds(),
            wall=time.perf_counter(),
        )

    def start(self) -> None:
        self._started = self._read()

    def per_unit(self, per_second: float) -> dict[str, float]:
        """Microseconds of CPU per unit of work (a transfer, a request) since :meth:`start`,
        for a scenario that did ``per_second`` units a second meanwhile."""
        now, then = self._read(), self._started
        scale = 1e6 / max(per_second * (now.wall - then.wall), 1.0)
        spent = {
            "cpu_us_server": (now.server - then.server) * scale,
            "cpu_us_sealer": (now.sealer - then.sealer) * scale,
            "cpu_us_postgres": (now.postgres - then.postgres) * scale,
            "cpu_us_client": (now.client - then.client) * scale,
            "cpu_us_machine": (now.machine - then.machine) * scale,
        }
        if self._sealer_pid is None:
            del spent["cpu_us_sealer"]
        return spent


def budget_us(per_second: float) -> float:
    """CPU microseconds per unit this machine has in all at ``per_second`` units a second."""
    return (os.cpu_count() or 1) * 1e6 / per_second
