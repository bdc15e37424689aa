"""`retail import FILE`: load a catalogue file into a running products service.

The file (.csv with a header, or .jsonl: one JSON object a line) is read as a stream and
sent to `POST /api/products/bulk` in chunks (500 rows by default), with a progress bar.
Rows are upserted by sku, so the command can be run again safely: a second run of the same
file answers every row `unchanged`. The summary counts what was created, updated, left
unchanged and what failed, each failure with its line number and reason; the exit status
is 1 if any row failed (2 if the file or the sign-in is unusable, before anything is sent).

This is an HTTP client of the products service (and auth, to sign in): it imports no
service. `COLUMNS` are the export's columns (`GET /api/products/export?format=csv`).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when the command runs: `retail up` need not load them
    import httpx

COLUMNS = (
    "sku",
    "title",
    "description",
    "brand",
    "price",
    "tax_percent",
    "stock",
    "category",
    "image_url",
)
REQUIRED = ("title", "price")
DEFAULT_CHUNK = 500
MAX_CHUNK = 1000
SHOWN_FAILURES = 50
RETRIES = 3  # a 503 or a dropped connection: the chunk is sent again (upserts by sku)


class ImportError_(Exception):
    """The file or the service cannot be used at all (exit status 2)."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    item: dict[str, Any] | None  # None: the row could not be read (see `error`)
    error: str = ""


@dataclass
class Summary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def add(self, line: int, result: dict[str, Any]) -> None:
        status = result["status"]
        if status == "failed":
            reasons = "; ".join(_reason(e) for e in result.get("errors") or ()) or "failed"
            self.failures.append((line, reasons))
        else:
            setattr(self, status, getattr(self, status) + 1)


def _reason(error: dict[str, Any]) -> str:
    name = str(error.get("field") or "")
    name = "category" if name == "category_id" else name
    return f"{name}: {error.get('message')}" if name else str(error.get("message"))


# ---- reading the file ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Columns:
    """Which file column feeds which of ours (`--map sku=id`), and which are left out."""

    renamed: dict[str, str]  # file column -> our column
    ignored: frozenset[str]

    def ours(self, header: list[str]) -> dict[str, str]:
        """file column -> our column, for a header; ImportError_ for one we do not know."""
        mapped = {name: self.renamed.get(name, name) for name in header if name not in self.ignored}
        unknown = [name for name, ours in mapped.items() if ours not in COLUMNS]
        if unknown:
            raise ImportError_(
                f"line 1: unknown column(s) {', '.join(map(repr, unknown))}; the columns are "
                f"{', '.join(COLUMNS)} (use --map OURS=THEIRS or --ignore THEIRS)"
            )
        missing = [c for c in REQUIRED if c not in mapped.values()]
        if missing:
            raise ImportError_(f"line 1: the file has no {' or '.join(missing)} column")
        return mapped


def _number(text: str) -> Any:
    """A CSV cell as a JSON number when it is one; the text itself otherwise, which the
    service then refuses for that row with its reason."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if not value.is_finite():
        return text
    return int(value) if value == value.to_integral_value() else float(value)


def row_item(values: dict[str, Any]) -> dict[str, Any]:
    """Our columns' values as a bulk item. An empty cell means none (no brand, no image,
    no category), except stock, tax and price, which an empty cell leaves unsaid."""
    item: dict[str, Any] = {}
    for column, value in values.items():
        if isinstance(value, str):
            value = value.strip()
            if column in ("price", "tax_percent", "stock") and value:
                value = _number(value)
        if value in ("", None) and column in ("price", "tax_percent", "stock", "sku"):
            continue
        if column == "category":
            item["category" if value else "category_id"] = value or None
        else:
            item[column] = None if value == "" and column in ("brand", "image_url") else value
    return item


def read_csv(path: Path, columns: Columns) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise ImportError_(f"line 1: not a CSV header ({exc})") from exc
        if not header:
            raise ImportError_("the file is empty: a CSV file starts with a header line")
        mapping = columns.ours([name.strip() for name in header])
        names = [name.strip() for name in header]
        line = reader.line_num + 1
        try:
            for cells in reader:
                yield _csv_row(line, names, mapping, cells)
                line = reader.line_num + 1
        except csv.Error as exc:
            yield Row(line, None, f"malformed CSV ({exc}); the rest of the file was not read")


def _csv_row(line: int, names: list[str], mapping: dict[str, str], cells: list[str]) -> Row:
    if not any(cell.strip() for cell in cells):
        return Row(line, None, "")  # a blank line: skipped, not counted
    if len(cells) != len(names):
        return Row(line, None, f"expected {len(names)} fields, found {len(cells)}")
    values = {mapping[n]: cell for n, cell in zip(names, cells, strict=True) if n in mapping}
    return Row(line, row_item(values))


def read_jsonl(path: Path, columns: Columns) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig") as file:
        for line, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield Row(line, None, f"not JSON ({exc.msg})")
                continue
            if not isinstance(data, dict):
                yield Row(line, None, "not a JSON object")
                continue
            try:
                mapping = columns.ours(list(data))
            except ImportError_ as exc:
                yield Row(line, None, str(exc).removeprefix("line 1: "))
                continue
            yield Row(line, row_item({mapping[k]: v for k, v in data.items() if k in mapping}))


def read_rows(path: Path, columns: Columns) -> Iterator[Row]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return read_jsonl(path, columns)
    if path.suffix.lower() == ".csv":
        return read_csv(path, columns)
    raise ImportError_(f"{path.name}: name a .csv or .jsonl file")


def count_rows(path: Path) -> int | None:
    """For the progress bar: data lines (a quoted line break makes it an estimate)."""
    try:
        with path.open("rb") as file:
            lines = sum(1 for line in file if line.strip())
    except OSError:
        return None
    return lines - 1 if path.suffix.lower() == ".csv" else lines


# ---- talking to the services ---------------------------------------------------------------


@dataclass
class Session:
    client: httpx.AsyncClient
    url: str
    login: tuple[str, str, str] | None  # auth URL, email, password: to sign in again

    async def sign_in(self) -> None:
        if self.login is None:
            return
        auth_url, email, password = self.login
        response = await self.client.post(
            f"{auth_url}/api/auth/login", json={"email": email, "password": password}
        )
        if response.status_code != 200:
            raise ImportError_(f"sign-in failed ({response.status_code}): {_message(response)}")
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    async def send(self, items: list[dict[str, Any]], params: dict[str, str]) -> list[Any]:
        """The per-item results of one chunk; a 503 or a lost connection is retried."""
        import httpx

        signed_in_again = False
        for attempt in range(RETRIES + 1):
            try:
                response = await self.client.post(
                    f"{self.url}/api/products/bulk", params=params, json={"products": items}
                )
            except httpx.TransportError as exc:
                if attempt == RETRIES:
                    raise ImportError_(f"{self.url} does not answer ({exc!r})") from exc
                await asyncio.sleep(2**attempt)
                continue
            if response.status_code == 401 and self.login and not signed_in_again:
                signed_in_again = True  # the token expired during a long import
                await self.sign_in()
                continue
            if response.status_code == 503 and attempt < RETRIES:
                await asyncio.sleep(2**attempt)
                continue
            if response.status_code != 200:
                raise ImportError_(
                    f"the import was refused ({response.status_code}): {_message(response)}"
                )
            results: list[Any] = response.json()["results"]
            return results
        raise ImportError_("the products service kept answering 503")


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message"))
    except ValueError:
        return response.text[:200]


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if sum(1 for r in chunk if r.item is not None) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def import_file(
    session: Session,
    rows: Iterator[Row],
    *,
    chunk_size: int = DEFAULT_CHUNK,
    params: dict[str, str] | None = None,
    total: int | None = None,
    progress: bool = True,
) -> Summary:
    from tqdm import tqdm

    summary = Summary()
    bar = tqdm(total=total, unit="row", desc="import", disable=not progress)
    try:
        for chunk in _chunks(rows, chunk_size):
            sent = [row for row in chunk if row.item is not None]
            for row in chunk:
                if row.item is None and row.error:
                    summary.failures.append((row.line, row.error))
            if sent:
                items = [row.item for row in sent if row.item is not None]
                results = await session.send(items, params or {})
                for row, result in zip(sent, results, strict=True):
                    summary.add(row.line, result)
            bar.update(len(chunk))
    finally:
        bar.close()
    summary.failures.sort()
    return summary


# ---- the command -------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """`retail import`'s arguments (registered by retail.cli)."""
    command = sub.add_parser(
        "import", help="upsert a catalogue file (.csv or .jsonl) into the products service"
    )
    command.add_argument("file", type=Path, help=f"columns: {', '.join(COLUMNS)}")
    command.add_argument("--url", help="the products service (default: $PRODUCTS_URL)")
    command.add_argument("--auth-url", help="where to sign in (default: $AUTH_URL)")
    command.add_argument("--email", help="an admin's email (default: $ADMIN_EMAIL)")
    command.add_argument("--password", help="its password (default: $ADMIN_PASSWORD)")
    command.add_argument("--token", help="an admin's access token instead of signing in")
    command.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="rows per request")
    command.add_argument("--atomic", action="store_true", help="each chunk all or nothing")
    command.add_argument(
        "--create-categories", action="store_true", help="create categories the file names"
    )
    command.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OURS=THEIRS",
        help="read our column from the file's column of another name (e.g. sku=id)",
    )
    command.add_argument(
        "--ignore", action="append", default=[], metavar="COLUMN", help="a file column to skip"
    )
    command.add_argument("--all-errors", action="store_true", help="list every failed row")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")


def _columns(args: argparse.Namespace) -> Columns:
    renamed: dict[str, str] = {}
    for pair in args.map:
        ours, sep, theirs = pair.partition("=")
        if not sep or ours.strip() not in COLUMNS or not theirs.strip():
            raise ImportError_(
                f"--map {pair!r}: write OURS=THEIRS, OURS one of {', '.join(COLUMNS)}"
            )
        renamed[theirs.strip()] = ours.strip()
    return Columns(renamed, frozenset(args.ignore))


def _print_summary(path: Path, summary: Summary, seconds: float, *, all_errors: bool) -> None:
    rows = summary.created + summary.updated + summary.unchanged + summary.failed
    print(f"{path.name}: {rows} rows in {seconds:.1f} s")
    print(
        f"  created {summary.created}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, failed {summary.failed}"
    )
    shown = summary.failures if all_errors else summary.failures[:SHOWN_FAILURES]
    for line, reason in shown:
        print(f"  line {line}: {reason}", file=sys.stderr)
    if len(shown) < summary.failed:
        print(f"  ... and {summary.failed - len(shown)} more (--all-errors)", file=sys.stderr)


async def _run(args: argparse.Namespace, columns: Columns) -> Summary:
    import httpx

    from retail.kernel.settings import Settings

    settings = Settings()
    email = args.email or os.environ.get("ADMIN_EMAIL")
    password = args.password or os.environ.get("ADMIN_PASSWORD")
    login = None
    if not args.token:
        if not (email and password):
            raise ImportError_("sign in with --email and --password, or give --token")
        login = (args.auth_url or settings.url_of("auth"), email, password)
    params = {
        "atomic": str(args.atomic).lower(),
        "create_categories": str(args.create_categories).lower(),
    }
    async with httpx.AsyncClient(timeout=120) as client:
        session = Session(client, (args.url or settings.url_of("products")).rstrip("/"), login)
        if args.token:
            client.headers["Authorization"] = f"Bearer {args.token}"
        await session.sign_in()
        return await import_file(
            session,
            read_rows(args.file, columns),
            chunk_size=args.chunk,
            params=params,
            total=count_rows(args.file),
            progress=not args.no_progress,
        )


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        if not 1 <= args.chunk <= MAX_CHUNK:
            raise ImportError_(f"--chunk must be between 1 and {MAX_CHUNK}")
        if not args.file.is_file():
            raise ImportError_(f"{args.file}: no such file")
        summary = asyncio.run(_run(args, _columns(args)))
    except ImportError_ as exc:
        print(f"import failed: {exc}", file=sys.stderr)
        return 2
    _print_summary(args.file, summary, time.monotonic() - started, all_errors=args.all_errors)
    return 1 if summary.failed else 0
