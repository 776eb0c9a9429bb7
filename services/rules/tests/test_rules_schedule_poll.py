"""A replica's poll: it loads an activation made elsewhere, and only then; and it learns of
a program published elsewhere within ``KNOWN_PROGRAMS_EVERY`` polls."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from openloop_rules.schedule import RuleSchedule, ScheduleLoader
from openloop_rules.shipped import shipped_rule_set
from openloop_rules.store import activations
from openloop_rules.store.activations import ActivationKind
from openloop_rules.store.seed import seed
from openloop_runtime.db import create_engine
from openloop_runtime.timestamps import utc_now
from services.rules.tests.conftest import FreshDatabase, migrated
from services.rules.tests.rules_cases import DEFAULT_VERSION

PROGRAM = "digital-wallet"


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
        assert schedule.last_activation_id == made.activation_id
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
