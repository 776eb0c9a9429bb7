"""Seeding a mesh that was seeded before (``make up`` on a kept ``.devstack``) finds what is
there and changes nothing."""

from __future__ import annotations

from openloop_dev.seed import seed_demo_program
from tests.e2e.journeys import balance


async def test_seeding_again_finds_the_same_program_and_moves_no_money(platform):
    before = await balance(platform.bank_a, platform.program.citizen)
    again = await seed_demo_program(platform.mesh.layout)
    assert again == platform.program
    assert await balance(platform.bank_a, platform.program.citizen) == before
