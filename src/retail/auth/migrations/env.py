from retail.auth.adapters.tables import metadata
from retail.kernel.migrations import run_env

run_env(metadata)
