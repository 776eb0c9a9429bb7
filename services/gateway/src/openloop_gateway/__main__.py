from openloop_gateway.app import MIGRATIONS_DIR, build
from openloop_gateway.config import GatewaySettings
from openloop_runtime.entrypoint import run_service

if __name__ == "__main__":
    run_service(
        name="gateway", settings_type=GatewaySettings, factory=build, migrations_dir=MIGRATIONS_DIR
    )
