from retail.kernel.migrations import run_env
from retail.products.adapters.sql import metadata

run_env(metadata)
