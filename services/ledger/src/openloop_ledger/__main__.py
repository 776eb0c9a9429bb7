from __future__ import annotations

from openloop_ledger.app import MIGRATIONS_DIR, build, build_sealer
from openloop_ledger.collector import collect_less_often
from openloop_ledger.config import LedgerSettings
from openloop_runtime.entrypoint import run_service

if __name__ == "__main__":
    collect_less_often()
    run_service(
        name="ledger",
        settings_type=LedgerSettings,
        factory=build,
        migrations_dir=MIGRATIONS_DIR,
        roles={"seal": build_sealer},
    )
