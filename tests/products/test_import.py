"""`retail import`: a file read as a stream, sent in chunks to the real products app (with a
real categories service), a summary with line numbers, and a second run that changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from retail import cli, importing
from retail.importing import Columns, ImportError_, Session, import_file, read_rows
from tests.products.shop import Shop
from tests.support import admin_headers

HEADER = "sku,title,description,brand,price,tax_percent,stock,category,image_url\n"
NO_COLUMNS = Columns({}, frozenset())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def run(
    shop: Shop, path: Path, columns: Columns = NO_COLUMNS, chunk: int = 2
) -> importing.Summary:
    shop.client.headers.update(admin_headers())
    session = Session(shop.client, "", None)
    return await import_file(
        session,
        read_rows(path, columns),
        chunk_size=chunk,
        params={"create_categories": "false"},
        progress=False,
    )


async def test_a_csv_is_imported_with_failures_by_line_and_a_rerun_changes_nothing(
    shop: Shop, tmp_path: Path
) -> None:
    await shop.category("Teas")
    path = write(
        tmp_path / "catalogue.csv",
        HEADER
        + 'T-1,Green tea,"Two\nlines",Twinings,4.50,5.5,10,Teas,\n'  # lines 2-3
        + "T-2,Black tea,,,-1,0,1,,\n"  # line 4: a negative price
        + "T-3,Mint tea,,,3,0,,Herbs,\n"  # line 5: an unknown category
        + "T-4,Short row,,\n"  # line 6: a row of the wrong length
        + "\n"  # line 7: blank, skipped
        + "T-5,Rooibos,,,2.25,,4,teas,https://img.example/r.jpg\n",  # line 8
    )
    summary = await run(shop, path)
    assert (summary.created, summary.updated, summary.unchanged) == (2, 0, 0)
    assert [line for line, _ in summary.failures] == [4, 5, 6]
    reasons = dict(summary.failures)
    assert reasons[4].startswith("price:")
    assert reasons[5].startswith("category: no category is named 'Herbs'")
    assert "expected 9 fields, found 4" in reasons[6]
    found = (await shop.client.get("/api/products?sku=T-1")).json()["products"]
    assert (found[0]["description"], found[0]["stock"]) == ("Two\nlines", 10)

    again = await run(shop, path)
    assert (again.created, again.updated, again.unchanged, again.failed) == (0, 0, 2, 3)


async def test_jsonl_and_renamed_columns(shop: Shop, tmp_path: Path) -> None:
    path = write(
        tmp_path / "catalogue.jsonl",
        '{"id": "J-1", "title": "Kettle", "price": 20, "colour": "red"}\n'
        "not json\n"
        '{"id": "J-2", "title": "Pot", "price": "abc"}\n',
    )
    summary = await run(shop, path, Columns({"id": "sku"}, frozenset({"colour"})))
    assert summary.created == 1
    assert [line for line, _ in summary.failures] == [2, 3]
    assert summary.failures[1][1].startswith("price:")


def test_an_unknown_or_missing_column_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", "sku,title,price,colour\nA,B,1,red\n")
    with pytest.raises(ImportError_, match=r"unknown column.*'colour'"):
        list(read_rows(path, NO_COLUMNS))
    with pytest.raises(ImportError_, match="no price column"):
        list(read_rows(write(tmp_path / "np.csv", "sku,title\nA,B\n"), NO_COLUMNS))
    rows = list(read_rows(path, Columns({}, frozenset({"colour"}))))
    assert rows[0].item == {"sku": "A", "title": "B", "price": 1}


def test_the_command_exits_2_on_an_unusable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "bad.csv", "sku,name\nA,B\n")
    code = cli.main(["import", str(path), "--token", "x", "--url", "http://127.0.0.1:9"])
    assert code == 2
    assert "unknown column" in capsys.readouterr().err
    assert cli.main(["import", str(tmp_path / "missing.csv"), "--token", "x"]) == 2


def test_cells_become_bulk_item_fields() -> None:
    item = importing.row_item(
        {
            "sku": " A ",
            "price": "4.50",
            "stock": "",
            "brand": "",
            "category": "",
            "tax_percent": "x",
        }
    )
    assert item == {
        "sku": "A",
        "price": 4.5,
        "brand": None,
        "category_id": None,
        "tax_percent": "x",
    }
