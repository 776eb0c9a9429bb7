from openloop_runtime.migrations import run_env
from openloop_settlement.tables import metadata

run_env(metadata)
