from openloop_rules.tables import metadata
from openloop_runtime.migrations import run_env

run_env(metadata)
