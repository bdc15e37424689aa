from retail.kernel.migrations import run_env
from retail.orders.adapters.tables import metadata

run_env(metadata)
