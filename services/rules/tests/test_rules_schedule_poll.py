"""A replica's poll: it loads an activation made elsewhere, and only then; and it learns of
a program published elsewhere within ``KNOWN_PROGRAMS_EVERY`` polls."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, text

from openloop_rules.schedule import RuleSchedule, ScheduleLoader
from openloop_rules.shipped import shipped_rule_set
from openloop_rules.store import activations
from openloop_rules.store.activations import ActivationKind
from openloop_rules.store.seed import seed
from openloop_rules.tables import activations as activations_table
from openloop_runtime.db import create_engine
from openloop_runtime.timestamps import utc_now
from services.rules.tests.conftest import FreshDatabase, migrated
from services.rules.tests.rules_cases import DEFAULT_VERSION

PROGRAM = "digital-wallet"
OLDER_VERSION = "digital-wallet-2024.1"


async def test_a_poll_loads_new_activations_and_newly_known_programs(
    fresh_database: FreshDatabase,
) -> None:
    engine = create_engine(await migrated(fresh_database))
    try:
        now = utc_now()
        await seed(engine, shipped_rule_set(DEFAULT_VERSION), now)
        schedule = RuleSchedule()
        loader = ScheduleLoader(engine, schedule)
        assert await loader.refresh(strict=True) == 1
        seeded = schedule.in_effect(PROGRAM, now)
        assert seeded is not None
        assert await loader.poll() == 0

        # Another replica re-activates the same version, effective in a minute.
        async with engine.begin() as conn:
            made = await activations.insert(
                conn,
                program_id=PROGRAM,
                version=DEFAULT_VERSION,
                effective_at=now + timedelta(minutes=1),
                actor="alice",
                reason="re-activate",
                kind=ActivationKind.ACTIVATE,
                request_id="poll-test",
            )
        assert made is not None
        assert await loader.poll() == 1
        assert made.activation_id in schedule.loaded
        assert schedule.in_effect(PROGRAM, now + timedelta(minutes=2)) is seeded  # compiled once
        assert await loader.poll() == 0

        # A program stored elsewhere, with no activation: known after at most a full round.
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO programs (program_id, version, document, sha256)"
                    " SELECT 'other-program', version, document, sha256 FROM programs LIMIT 1"
                )
            )
        assert not schedule.knows("other-program")
        for _ in range(ScheduleLoader.KNOWN_PROGRAMS_EVERY):
            assert await loader.poll() == 0
        assert schedule.knows("other-program")
    finally:
        await engine.dispose()


async def test_an_activation_committed_after_a_later_one_is_still_loaded(
    fresh_database: FreshDatabase,
) -> None:
    """Ids are taken at insert, rows become visible at commit: activation A (smaller id) may
    commit after B (larger id) and after a poll that saw B. The replica still loads A, and
    decides as a freshly started replica and ListActivations' history do.

    ``activations.insert`` takes ids in commit order, so A is written the way a writer that
    does not would write it: a replica of an earlier version during a rolling upgrade, or a
    row added by hand. The schedule does not rely on the order either way."""
    engine = create_engine(await migrated(fresh_database))
    try:
        now = utc_now()
        await seed(engine, shipped_rule_set(DEFAULT_VERSION), now)
        await seed(engine, shipped_rule_set(OLDER_VERSION), now)  # stored, not activated
        schedule = RuleSchedule()
        loader = ScheduleLoader(engine, schedule)
        await loader.refresh(strict=True)

        slow = await engine.connect()
        slow_transaction = await slow.begin()
        first_id = await slow.scalar(
            insert(activations_table)
            .values(
                program_id=PROGRAM,
                version=OLDER_VERSION,
                effective_at=now + timedelta(minutes=10),
                activated_by="alice",
                reason="A: slow to commit",
                kind=ActivationKind.ACTIVATE.value,
            )
            .returning(activations_table.c.activation_id)
        )
        async with engine.begin() as conn:
            second = await activations.insert(
                conn,
                program_id=PROGRAM,
                version=DEFAULT_VERSION,
                effective_at=now + timedelta(minutes=5),
                actor="bob",
                reason="B: commits first",
                kind=ActivationKind.ACTIVATE,
                request_id=None,
            )
        assert first_id is not None
        assert second is not None
        assert first_id < second.activation_id
        assert await loader.poll() == 1  # B
        await slow_transaction.commit()
        await slow.close()
        assert await loader.poll() == 1  # A, although its id is below B's
        assert await loader.poll() == 0

        later = now + timedelta(minutes=11)
        decides = schedule.in_effect(PROGRAM, later)
        assert decides is not None
        assert decides.version == OLDER_VERSION
        fresh = RuleSchedule()
        await ScheduleLoader(engine, fresh).refresh(strict=True)
        restarted = fresh.in_effect(PROGRAM, later)
        assert restarted is not None
        assert restarted.version == OLDER_VERSION
        async with engine.connect() as conn:
            history = await activations.of_program(conn, PROGRAM)
        in_history = activations.in_effect(history, later)
        assert in_history is not None
        assert in_history.version == OLDER_VERSION
        between = schedule.in_effect(PROGRAM, now + timedelta(minutes=6))
        assert between is not None
        assert between.version == DEFAULT_VERSION
    finally:
        await engine.dispose()
