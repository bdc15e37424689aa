"""Orders' use cases, all in this package. Each takes `OrdersDeps` first and everything
else by keyword (docs/architecture.md, "Use cases").

- `reads`: `get_order`, `list_orders`
- `placing`: `place_order`
- `reordering`: `reorder`
- `lifecycle`: `cancel_order`, `change_status` (an admin's moves)
- `recovery`: `recover` (one pass), `keep_recovering` (the loop every process runs)

Use-case modules never import one another. What they share is below them: `saga` (the
steps: open, reserve, confirm or fail or abandon, release) and, under it, `idempotency`
(a key's claim and its stored answer). import-linter checks both rules.
"""

from retail.orders.service.lifecycle import cancel_order, change_status
from retail.orders.service.placing import place_order
from retail.orders.service.reads import get_order, list_orders
from retail.orders.service.recovery import RecoveryReport, keep_recovering, recover
from retail.orders.service.reordering import reorder

__all__ = [
    "RecoveryReport",
    "cancel_order",
    "change_status",
    "get_order",
    "keep_recovering",
    "list_orders",
    "place_order",
    "recover",
    "reorder",
]
