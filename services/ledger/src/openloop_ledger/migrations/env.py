from openloop_ledger.tables import metadata
from openloop_runtime.migrations import run_env

run_env(metadata)
