from __future__ import annotations

from openloop_runtime.entrypoint import run_service
from openloop_settlement.app import MIGRATIONS_DIR, build
from openloop_settlement.config import SettlementSettings

if __name__ == "__main__":
    run_service(
        name="settlement",
        settings_type=SettlementSettings,
        factory=build,
        migrations_dir=MIGRATIONS_DIR,
    )
