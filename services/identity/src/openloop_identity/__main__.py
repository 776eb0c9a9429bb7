from openloop_identity.app import MIGRATIONS_DIR, build
from openloop_identity.config import IdentitySettings
from openloop_runtime.entrypoint import run_service

if __name__ == "__main__":
    run_service(
        name="identity",
        settings_type=IdentitySettings,
        factory=build,
        migrations_dir=MIGRATIONS_DIR,
    )
