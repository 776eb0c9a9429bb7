"""The cut-off scheduler against a real settlement server and PostgreSQL: it closes the OPEN
cycle at each cut-off, once however many replicas run it, catches up the latest missed
cut-off only, leaves a cycle an operator cut after the cut-off alone, and outlives a
database outage.

Time is the tests' own (:class:`ManualTime`): the schedulers read its clock and sleep on it,
and a test moves it on, so a day's cut-offs pass in milliseconds. Each test's cut-offs are
on days of its own, far from the real date (request ids name the day), except where a test
needs the database's own times: then it derives the cut-off from a cycle's open time, never
from the time of day. The tests share the module's database: they read which cycle is OPEN
rather than assume a number.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from openloop.settlement.v1 import resources_pb2, service_pb2
from openloop_runtime.server import running_server
from openloop_settlement.app import build
from openloop_settlement.config import SettlementSettings
from openloop_settlement.cutoff_scheduler import (
    ACTOR,
    Applied,
    CutoffCycles,
    CutoffScheduler,
    Outcome,
)
from openloop_settlement.cutoffs import CutoffSchedule, request_id_for
from openloop_settlement.cycles import ClosedCycle, CycleStore
from openloop_settlement.model import SettlementCycle
from services.settlement.tests.settlement_helpers import (
    OPERATOR_KEYS,
    new_bank,
    open_cycle,
    record,
)

if TYPE_CHECKING:
    from openloop.settlement.v1 import service_pb2_grpc

    Stub = service_pb2_grpc.SettlementServiceAsyncStub

BANGKOK = "Asia/Bangkok"
WAIT = 10.0
"""Real seconds a test waits at most for the schedulers to settle (they take milliseconds)."""


def _bangkok(local: str) -> datetime:
    """``"2091-01-10 23:00"`` on Bangkok's clocks, in UTC."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(BANGKOK)).astimezone(UTC)


class ManualTime:
    """A clock and a sleep for schedulers: ``sleep`` returns once the test has moved the clock
    to the sleeper's deadline (``advance_to``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []
        self._slept = asyncio.Condition()

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.now + timedelta(seconds=seconds), woken)
        self._sleepers.append(entry)
        async with self._slept:
            self._slept.notify_all()
        try:
            await woken
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    def advance_to(self, when: datetime) -> None:
        self.now = when
        for deadline, woken in list(self._sleepers):
            if deadline <= when and not woken.done():
                self._sleepers.remove((deadline, woken))
                woken.set_result(None)

    async def sleeping(self, count: int) -> None:
        """Until ``count`` schedulers sleep: each has done what the time called for."""
        async with asyncio.timeout(WAIT), self._slept:
            await self._slept.wait_for(lambda: len(self._sleepers) >= count)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(settlement_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settlement_database, pool_size=10)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def running() -> AsyncIterator[Callable[[Awaitable[None]], None]]:
    """Starts scheduler loops as tasks; checks none ended, then cancels them."""
    tasks: list[asyncio.Task[None]] = []

    def start(loop: Awaitable[None]) -> None:
        tasks.append(asyncio.ensure_future(loop))

    yield start
    for task in tasks:
        assert not task.done(), task  # the loop never ends on its own, not even on errors
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task


def _scheduler(
    cycles: CutoffCycles, time: ManualTime, *times: str, zone: str = BANGKOK
) -> CutoffScheduler:
    return CutoffScheduler(
        cycles, CutoffSchedule.of(times, zone), clock=time.clock, sleep=time.sleep
    )


async def _cycle(engine: AsyncEngine, name: str) -> SettlementCycle:
    cycle = await CycleStore(engine).get(int(name.split("/")[1]))
    assert cycle is not None
    return cycle


async def _open_id(engine: AsyncEngine) -> int:
    return (await CycleStore(engine).open_cycle()).cycle_id


async def test_a_cut_off_closes_the_cycle_between_the_transfers_before_and_after_it(
    settlement: Stub, engine: AsyncEngine, running: Callable[[Awaitable[None]], None]
) -> None:
    tonight = _bangkok("2091-01-10 23:00")
    time = ManualTime(tonight - timedelta(hours=1))
    running(_scheduler(CycleStore(engine), time, "23:00").run())
    # At start it applies the latest cut-off (last night's): the OPEN cycle opened long
    # before it (the real date is decades earlier), so that close comes first.
    await time.sleeping(1)
    assert time.sleeps[-1] == 60.0  # an hour to 23:00: it looks at the clock every minute
    caught_up = await _cycle(engine, f"settlementCycles/{await _open_id(engine) - 1}")
    assert caught_up.cutoff_time == tonight - timedelta(days=1)

    payer, payee = new_bank(), new_bank()
    before = [await record(settlement, payer, payee, 1_000 + i) for i in range(3)]
    cycle = await open_cycle(settlement)
    assert {o.cycle for o in before} == {cycle}

    while time.now + timedelta(seconds=60) < tonight:  # up to the cut-off: nothing closes
        time.advance_to(time.now + timedelta(seconds=60))
        await time.sleeping(1)
    assert time.now == tonight - timedelta(minutes=1)
    assert await open_cycle(settlement) == cycle

    time.advance_to(tonight)
    await time.sleeping(1)
    after = [await record(settlement, payee, payer, 500 + i) for i in range(2)]
    next_cycle = await open_cycle(settlement)
    assert next_cycle != cycle
    assert {o.cycle for o in after} == {next_cycle}

    closed = (
        await settlement.GetSettlementCycle(service_pb2.GetSettlementCycleRequest(name=cycle))
    ).settlement_cycle
    assert closed.state == resources_pb2.SettlementCycle.STATE_CLOSED
    assert closed.closed_by == ACTOR == "scheduler:cutoff"
    assert closed.cutoff_time.ToDatetime(tzinfo=UTC) == tonight
    stored = await _cycle(engine, cycle)
    assert stored.close_request_id == request_id_for(tonight) == "cutoff:20910110T1600Z"
    positions = await settlement.ListCyclePositions(
        service_pb2.ListCyclePositionsRequest(parent=cycle, page_size=10)
    )
    assert {p.participant: p.net_position.amount_satang for p in positions.cycle_positions} == {
        payer: -3_003,
        payee: 3_003,
    }


async def test_many_schedulers_on_one_database_close_once_per_cut_off(
    engine: AsyncEngine, running: Callable[[Awaitable[None]], None]
) -> None:
    """Four replicas, each its own engine (its own connections), one clock between them."""
    engines = [create_async_engine(engine.url, pool_size=2) for _ in range(4)]
    try:
        time = ManualTime(_bangkok("2092-02-01 12:00"))
        for replica in engines:
            running(_scheduler(CycleStore(replica), time, "07:30", "23:00").run())
        first = await _open_id(engine)
        await time.sleeping(4)
        assert await _open_id(engine) == first + 1  # the catch-up of 07:30, once
        for local in ("02-01 23:00", "02-02 07:30", "02-02 23:00", "02-03 07:30"):
            time.advance_to(_bangkok(f"2092-{local}"))
            await time.sleeping(4)
        assert await _open_id(engine) == first + 5
        closes = [await _cycle(engine, f"settlementCycles/{first + i}") for i in range(5)]
        assert [c.close_request_id for c in closes] == [
            "cutoff:20920201T0030Z",
            "cutoff:20920201T1600Z",
            "cutoff:20920202T0030Z",
            "cutoff:20920202T1600Z",
            "cutoff:20920203T0030Z",
        ]
        assert {c.closed_by for c in closes} == {ACTOR}
    finally:
        for replica in engines:
            await replica.dispose()


async def test_concurrent_replicas_agree_one_closed_and_the_rest_found_it_closed(
    engine: AsyncEngine,
) -> None:
    time = ManualTime(_bangkok("2092-06-01 23:00:05"))
    replicas = [_scheduler(CycleStore(engine), time, "23:00") for _ in range(6)]
    first = await _open_id(engine)
    applied = await asyncio.gather(*(r.apply_latest() for r in replicas))
    assert (
        sorted(a.outcome for a in applied if a is not None)
        == [Outcome.CLOSED] + [Outcome.FOUND_CLOSED] * 5
    )
    assert {a.cycle_id for a in applied if a is not None} == {first}
    assert await _open_id(engine) == first + 1


class CutoffCyclesProxy:
    """The cycle store as one replica sees it, with ``between`` run after one of its reads:
    another replica's (or an operator's) close landing between this replica's steps."""

    def __init__(
        self, real: CycleStore, after: str, between: Callable[[], Awaitable[object]]
    ) -> None:
        self._real, self._after, self._between = real, after, between

    async def _step(self, name: str, result: object) -> None:
        if name == self._after:
            await self._between()

    async def open_cycle(self) -> SettlementCycle:
        found = await self._real.open_cycle()
        await self._step("open_cycle", found)
        return found

    async def closed_under(self, request_id: str) -> SettlementCycle | None:
        found = await self._real.closed_under(request_id)
        await self._step("closed_under", found)
        return found

    async def close(
        self, cycle_id: int, request_id: str, actor: str, *, cutoff_time: datetime | None = None
    ) -> ClosedCycle:
        return await self._real.close(cycle_id, request_id, actor, cutoff_time=cutoff_time)


@pytest.mark.parametrize(
    ("after", "year"),
    [
        # B found no close under the key, then A closed: B reads the next cycle OPEN, and its
        # close is refused IDEMPOTENCY_KEY_REUSED naming the cycle A closed.
        ("closed_under", 2093),
        # B read the cycle OPEN, then A closed it: B's close answers A's (replayed).
        ("open_cycle", 2094),
    ],
)
async def test_a_replica_a_step_behind_finds_the_cut_off_applied(
    engine: AsyncEngine, after: str, year: int
) -> None:
    time = ManualTime(_bangkok(f"{year}-01-01 23:30"))
    a = _scheduler(CycleStore(engine), time, "23:00")
    first = await _open_id(engine)
    b = _scheduler(CutoffCyclesProxy(CycleStore(engine), after, a.apply_latest), time, "23:00")
    applied = await b.apply_latest()
    cutoff = _bangkok(f"{year}-01-01 23:00")
    assert applied == Applied(cutoff, Outcome.FOUND_CLOSED, first)
    assert await _open_id(engine) == first + 1
    assert (await _cycle(engine, f"settlementCycles/{first}")).cutoff_time == cutoff


async def test_an_operator_closing_between_the_read_and_the_close_wins(
    engine: AsyncEngine,
) -> None:
    time = ManualTime(_bangkok("2095-01-01 23:30"))
    first = await _open_id(engine)

    async def operator_closes() -> object:
        return await CycleStore(engine).close(first, "op-2095", "operator:somchai")

    proxy = CutoffCyclesProxy(CycleStore(engine), "open_cycle", operator_closes)
    applied = await _scheduler(proxy, time, "23:00").apply_latest()
    assert applied is not None
    assert (applied.outcome, applied.cycle_id) == (Outcome.OPENED_AFTER_CUTOFF, first + 1)
    assert await _open_id(engine) == first + 1
    assert (await _cycle(engine, f"settlementCycles/{first}")).closed_by == "operator:somchai"


async def test_after_missed_cut_offs_only_the_latest_is_caught_up(
    engine: AsyncEngine, running: Callable[[Awaitable[None]], None]
) -> None:
    """Down for a week across two cut-offs a day: one close on return, for the latest."""
    time = ManualTime(_bangkok("2096-03-09 10:00"))
    first = await _open_id(engine)
    running(_scheduler(CycleStore(engine), time, "07:30", "23:00").run())
    await time.sleeping(1)
    assert await _open_id(engine) == first + 1
    closed = await _cycle(engine, f"settlementCycles/{first}")
    assert closed.cutoff_time == _bangkok("2096-03-09 07:30")
    assert closed.close_request_id == "cutoff:20960309T0030Z"
    # A restart later the same morning finds it applied and closes nothing.
    again = _scheduler(CycleStore(engine), ManualTime(_bangkok("2096-03-09 11:00")), "07:30")
    assert await again.apply_latest() == Applied(
        _bangkok("2096-03-09 07:30"), Outcome.FOUND_CLOSED, first
    )
    assert await _open_id(engine) == first + 1


async def test_no_close_when_an_operator_closed_after_the_cut_off(engine: AsyncEngine) -> None:
    """The cut-offs here are read off the database's clock: just before the operator's close
    (nothing to do) and just after it (the cycle must close)."""
    cycles = CycleStore(engine)
    operator = await cycles.close(
        await _open_id(engine), "op-after-cutoff", "operator:malee", cutoff_time=None
    )
    opened = (await cycles.open_cycle()).open_time
    assert operator.next_cycle_id == await _open_id(engine)
    before = opened.replace(second=0, microsecond=0)  # <= the operator's close
    after = before + timedelta(minutes=1)  # > the operator's close
    for cutoff, expected in (
        (before, Outcome.OPENED_AFTER_CUTOFF),
        (after, Outcome.CLOSED),
    ):
        time = ManualTime(cutoff + timedelta(seconds=1))
        scheduler = _scheduler(cycles, time, f"{cutoff:%H:%M}", zone="UTC")
        applied = await scheduler.apply_latest()
        assert applied is not None
        assert (applied.cutoff, applied.outcome) == (cutoff, expected)
    assert await _open_id(engine) == operator.next_cycle_id + 1
    assert await cycles.closed_under(request_id_for(before)) is None


async def test_database_errors_are_logged_and_retried_with_backoff(
    engine: AsyncEngine,
    running: Callable[[Awaitable[None]], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database unreachable (nothing listens on the port): the loop logs, backs off
    1, 2, 4, 8 … s, and closes the missed cut-off once the database answers."""
    down = create_async_engine("postgresql+asyncpg://nobody:x@127.0.0.1:1/none")
    first = await _open_id(engine)

    class Outage:
        def __init__(self) -> None:
            self.store = CycleStore(down)

        async def open_cycle(self) -> SettlementCycle:
            return await self.store.open_cycle()

        async def closed_under(self, request_id: str) -> SettlementCycle | None:
            return await self.store.closed_under(request_id)

        async def close(
            self, cycle_id: int, request_id: str, actor: str, *, cutoff_time: datetime | None = None
        ) -> ClosedCycle:
            return await self.store.close(cycle_id, request_id, actor, cutoff_time=cutoff_time)

    outage = Outage()
    start = _bangkok("2097-05-05 23:00:01")
    time = ManualTime(start)
    scheduler = CutoffScheduler(
        outage,
        CutoffSchedule.of(["23:00"], BANGKOK),
        clock=time.clock,
        sleep=time.sleep,
        first_retry=1.0,
        last_retry=8.0,
    )
    with caplog.at_level(logging.ERROR, logger="openloop_settlement.cutoff_scheduler"):
        running(scheduler.run())
        for _ in range(5):
            await time.sleeping(1)
            time.advance_to(time.now + timedelta(seconds=time.sleeps[-1]))
        await time.sleeping(1)
    assert time.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert await _open_id(engine) == first  # nothing closed while the database was away
    failures = [r for r in caplog.records if r.getMessage().startswith("settlement cut-off not")]
    assert len(failures) == 6
    assert all(r.exc_info is not None for r in failures)

    outage.store = CycleStore(engine)  # the database is back
    time.advance_to(time.now + timedelta(seconds=8))
    await time.sleeping(1)
    assert await _open_id(engine) == first + 1
    closed = await _cycle(engine, f"settlementCycles/{first}")
    assert closed.cutoff_time == start - timedelta(seconds=1)
    assert time.sleeps[-1] == 60.0  # back to waiting for the next cut-off
    await down.dispose()


async def test_the_service_runs_the_scheduler_with_the_server_and_stops_it_with_it(
    settlement_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    def schedulers() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "settlement-cutoff-scheduler"]

    with caplog.at_level(logging.INFO, logger="openloop_settlement.app"):
        off = SettlementSettings(
            port=0, database_url=settlement_database, operator_keys=OPERATOR_KEYS
        )
        async with running_server("settlement.openloop.dev", off, build(off)):
            assert schedulers() == []
        on = off.model_copy(update={"cutoff_times": ("23:00",)})
        async with running_server("settlement.openloop.dev", on, build(on)):
            (task,) = schedulers()
            await asyncio.sleep(0.05)
            assert not task.done()
        assert task.cancelled()
        assert schedulers() == []
    messages = [r.getMessage() for r in caplog.records]
    assert any("cycles close only when an operator closes them" in m for m in messages)
    assert "settlement cycles close at scheduled cut-offs" in messages
