from retail.auth.adapters.sql import metadata
from retail.kernel.migrations import run_env

run_env(metadata)
