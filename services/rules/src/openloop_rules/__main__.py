from openloop_rules.app import MIGRATIONS_DIR, build
from openloop_rules.config import RulesSettings
from openloop_runtime.entrypoint import run_service

if __name__ == "__main__":
    run_service(
        name="rules",
        settings_type=RulesSettings,
        factory=build,
        migrations_dir=MIGRATIONS_DIR,
    )
