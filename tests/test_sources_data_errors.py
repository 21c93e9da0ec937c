"""Reading sources: data problems are data errors naming file, line and value, never silently
reinterpreted; semicolon and Latin-1 exports are read when declared (issue 14 items 7 and 8)."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from segcli import api
from segcli.errors import DataError, SpecError

AS_OF = "2026-06-30"
CONTACTS = "contact_id,name,signed_up\n1,Ann,2026-01-05\n2,Bob,2026-02-10\n3,Cy,2026-03-15\n"
PURCHASES = (
    "contact_id,purchased_at,amount\n1,2026-06-01T10:00:00Z,10.5\n3,2026-06-02T11:00:00Z,7\n"
)


@pytest.fixture(autouse=True)
def _in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # messages show paths relative to the working directory


def project(
    tmp_path: Path, files: dict[str, str | bytes], sources: str = "", segments: str = ""
) -> Path:
    """A spec over contacts.csv (and purchases.csv when given) plus `files`."""
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    spec = (
        "version: 1\nsources:\n  contacts:\n    path: contacts.csv\n    key: contact_id\n"
        + sources
        + "segments:\n  everyone: {where: {all: []}}\n"
        + segments
    )
    (tmp_path / "segments.yaml").write_text(spec, encoding="utf-8")
    return tmp_path / "segments.yaml"


PURCHASE_SOURCE = (
    "  purchases:\n    path: purchases.csv\n    key: contact_id\n    time: purchased_at\n"
)
BUYERS = "  buyers: {where: {event: {source: purchases}}}\n"


def members(spec: Path, segment: str) -> list[object]:
    ev, _ = api.compute(api.load(spec), AS_OF)
    return sorted(ev.frame.filter(pl.col(f"__seg__{segment}"))["contact_id"].to_list())


def data_error(spec: Path) -> str:
    with pytest.raises(DataError) as info:
        api.compute(api.load(spec), AS_OF)
    message = info.value.message
    assert "This error occurred" not in message and "PLAN" not in message.upper()
    return message


def test_a_non_iso_date_in_the_first_rows_is_reported_with_file_line_and_value(
    tmp_path: Path,
) -> None:
    text = CONTACTS.replace("2026-02-10", "02/10/2026")
    seg = "  new: {where: {field: signed_up, gte: 2026-03-01}}\n"
    message = data_error(project(tmp_path, {"contacts.csv": text}, segments=seg))
    assert message.startswith(
        "contacts.csv:3: column 'signed_up': cannot parse '02/10/2026' as date"
    )
    assert "columns: {signed_up: str}" in message


def test_a_bad_value_after_the_sample_is_reported_with_its_line(tmp_path: Path) -> None:
    rows = "".join(f"{i},P{i},2026-01-05\n" for i in range(1, 12_001))
    text = "contact_id,name,signed_up\n" + rows.replace("11500,P11500,2026-01-05", "11500,P,x")
    seg = "  new: {where: {field: signed_up, gte: 2026-03-01}}\n"
    message = data_error(project(tmp_path, {"contacts.csv": text}, segments=seg))
    assert message.startswith("contacts.csv:11501: column 'signed_up': cannot parse 'x' as date")


def test_line_numbers_count_quoted_newlines(tmp_path: Path) -> None:
    text = (
        'contact_id,name,signed_up\n1,"Ann\nSmith",2026-01-05\n2,"B\n\nob",2026-02-10\n3,Cy,oops\n'
    )
    assert data_error(project(tmp_path, {"contacts.csv": text})).startswith(
        "contacts.csv:7: column 'signed_up': cannot parse 'oops'"
    )
    dup = 'contact_id,name\n1,"Ann\nSmith"\n2,Bob\n1,Again\n'
    assert data_error(project(tmp_path, {"contacts.csv": dup})).startswith(
        "contacts.csv:5: duplicate contact key contact_id=1 (first at line 2)"
    )


def test_a_header_only_contacts_file_is_a_data_error(tmp_path: Path) -> None:
    message = data_error(project(tmp_path, {"contacts.csv": "contact_id,name\n"}))
    assert message == "contacts.csv: the contacts export has no rows (only a header)"


def test_event_keys_that_cannot_be_contact_keys_are_a_data_error(tmp_path: Path) -> None:
    text = PURCHASES.replace("\n3,", "\nC-1844,")
    spec = project(
        tmp_path, {"contacts.csv": CONTACTS, "purchases.csv": text}, PURCHASE_SOURCE, BUYERS
    )
    message = data_error(spec)
    assert message.startswith(
        "purchases.csv:3: column 'contact_id': cannot parse 'C-1844' as int "
        "(the contacts key is int"
    )


def test_event_keys_in_parquet_are_checked_too(tmp_path: Path) -> None:
    pl.DataFrame(
        {"contact_id": ["1", "C-1844"], "purchased_at": ["2026-06-01T10:00:00Z"] * 2}
    ).with_columns(pl.col("purchased_at").str.to_datetime(time_zone="UTC")).write_parquet(
        tmp_path / "p.parquet"
    )
    src = PURCHASE_SOURCE.replace("purchases.csv", "p.parquet")
    message = data_error(project(tmp_path, {"contacts.csv": CONTACTS}, src, BUYERS))
    assert message.startswith("p.parquet: row 2: column 'contact_id': key 'C-1844'")


def test_matching_event_keys_still_match(tmp_path: Path) -> None:
    spec = project(
        tmp_path, {"contacts.csv": CONTACTS, "purchases.csv": PURCHASES}, PURCHASE_SOURCE, BUYERS
    )
    assert members(spec, "buyers") == [1, 3]


def test_one_key_written_as_a_float_is_an_error_not_a_float_column(tmp_path: Path) -> None:
    text = CONTACTS.replace("\n2,Bob", "\n2.0,Bob")
    assert data_error(project(tmp_path, {"contacts.csv": text})).startswith(
        "contacts.csv:3: column 'contact_id': cannot parse '2.0' as int"
    )


def test_ragged_rows_name_file_and_line(tmp_path: Path) -> None:
    text = CONTACTS.replace("2,Bob,2026-02-10", "2,Bob,2026-02-10,extra")
    assert data_error(project(tmp_path, {"contacts.csv": text})).startswith(
        "contacts.csv:3: this row has 4 fields, the header has 3"
    )


def test_a_ragged_row_after_the_sample_names_file_and_line(tmp_path: Path) -> None:
    rows = "".join(f"{i},2026-06-01T10:00:00Z\n" for i in range(1, 12_001))
    text = "contact_id,purchased_at\n" + rows.replace("\n11000,", "\n11000,x,")
    spec = project(
        tmp_path, {"contacts.csv": CONTACTS, "purchases.csv": text}, PURCHASE_SOURCE, BUYERS
    )
    assert data_error(spec).startswith("purchases.csv:11001: this row has 3 fields")


def test_a_semicolon_export_without_delimiter_gets_a_hint(tmp_path: Path) -> None:
    text = CONTACTS.replace(",", ";")
    message = data_error(project(tmp_path, {"contacts.csv": text}))
    assert message.startswith("contacts.csv:1: the header")
    assert 'delimiter: ";"' in message


def test_semicolon_and_latin1_are_read_when_declared(tmp_path: Path) -> None:
    text = "contact_id;name;signed_up\n1;Jürgen;2026-01-05\n2;Zoë;2026-02-10\n"
    sources = '    delimiter: ";"\n    encoding: latin-1\n'
    spec = project(tmp_path, {"contacts.csv": text.encode("latin-1")})
    spec.write_text(spec.read_text().replace("key: contact_id\n", "key: contact_id\n" + sources, 1))
    frame = api.load(spec).catalog.frame("contacts").collect()
    assert frame["name"].to_list() == ["Jürgen", "Zoë"]
    assert frame.schema["signed_up"] == pl.Date


def test_a_latin1_export_without_encoding_gets_a_hint(tmp_path: Path) -> None:
    text = CONTACTS.replace("Bob", "Jürgen").encode("latin-1")
    message = data_error(project(tmp_path, {"contacts.csv": text}))
    assert message.startswith("contacts.csv:3: not UTF-8 text (byte 0xfc)")
    assert "encoding: latin-1" in message


def test_gzipped_csv_streams(tmp_path: Path) -> None:
    (tmp_path / "purchases.csv.gz").write_bytes(gzip.compress(PURCHASES.encode()))
    src = PURCHASE_SOURCE.replace("purchases.csv", "purchases.csv.gz")
    spec = project(tmp_path, {"contacts.csv": CONTACTS}, src, BUYERS)
    assert members(spec, "buyers") == [1, 3]


def _gz_parts(tmp_path: Path, n: int) -> list[Path]:
    """n gzipped parts: contact 1 buys in part 0, contact 3 in the last, the others empty."""
    (tmp_path / "gz").mkdir()
    header, first, last = PURCHASES.splitlines()
    parts = []
    for i in range(n):
        rows = [header] + ([first] if i == 0 else []) + ([last] if i == n - 1 else [])
        parts.append(tmp_path / "gz" / f"p{i:02d}.csv.gz")
        parts[-1].write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    return parts


def test_gzipped_parts_decompressed_ahead_stream_in_order(tmp_path: Path) -> None:
    _gz_parts(tmp_path, 5)
    src = PURCHASE_SOURCE.replace("purchases.csv", "gz/*.csv.gz")
    spec = project(tmp_path, {"contacts.csv": CONTACTS}, src, BUYERS)
    assert members(spec, "buyers") == [1, 3]


def test_a_corrupt_gzipped_part_read_ahead_is_named(tmp_path: Path) -> None:
    """A part past the sampled ones is decompressed on the read-ahead thread; its failure
    still names it."""
    from segcli.engines.csv_sample import sampled

    parts = _gz_parts(tmp_path, 24)
    unsampled = [p for p in parts if p not in sampled(parts)]
    bad = unsampled[len(unsampled) // 2]
    bad.write_bytes(bad.read_bytes()[:20])
    src = PURCHASE_SOURCE.replace("purchases.csv", "gz/*.csv.gz")
    message = data_error(project(tmp_path, {"contacts.csv": CONTACTS}, src, BUYERS))
    assert message.startswith(f"gz/{bad.name}"), message


def test_parquet_parts_with_different_schemas_name_the_part(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    at = pl.lit("2026-06-01T10:00:00Z").str.to_datetime(time_zone="UTC")
    pl.DataFrame({"contact_id": [1]}).with_columns(at.alias("purchased_at")).write_parquet(
        tmp_path / "parts" / "a.parquet"
    )
    pl.DataFrame({"contact_id": ["3"]}).with_columns(at.alias("purchased_at")).write_parquet(
        tmp_path / "parts" / "b.parquet"
    )
    src = PURCHASE_SOURCE.replace("purchases.csv", "parts/*.parquet")
    message = data_error(project(tmp_path, {"contacts.csv": CONTACTS}, src, BUYERS))
    assert message.startswith("parts/b.parquet: column 'contact_id' is String, but Int64 in")


def test_a_corrupt_parquet_file_is_named(tmp_path: Path) -> None:
    src = PURCHASE_SOURCE.replace("purchases.csv", "p.parquet")
    spec = project(tmp_path, {"contacts.csv": CONTACTS, "p.parquet": b"PAR1 not really"}, src)
    with pytest.raises(DataError) as info:
        api.load(spec)
    assert info.value.message.startswith("p.parquet: not a readable Parquet file")


RULES = (
    "scoring:\n  interest:\n    rules_file:\n      path: assets.csv\n"
    '      when: {event: {source: purchases, where: {amount: {gte: "{min}"}}}}\n'
)


@pytest.mark.parametrize(
    ("assets", "expected"),
    [
        ("asset,points\nbig,5\n", "has no column 'min' that `when` uses as {min}"),
        ("asset,points,min\n", "has no rows"),
    ],
)
def test_a_rules_file_that_would_give_no_rules_is_an_error(
    tmp_path: Path, assets: str, expected: str
) -> None:
    files = {"contacts.csv": CONTACTS, "purchases.csv": PURCHASES, "assets.csv": assets}
    spec = project(tmp_path, files, PURCHASE_SOURCE)
    spec.write_text(spec.read_text() + RULES)
    with pytest.raises(SpecError) as info:
        api.load(spec)
    assert [expected in d.message for d in info.value.diagnostics] == [True]


def test_declared_options_are_checked(tmp_path: Path) -> None:
    spec = project(tmp_path, {"contacts.csv": CONTACTS})
    spec.write_text(
        spec.read_text().replace(
            "key: contact_id\n", "key: contact_id\n    delimiter: ';;'\n    encoding: klingon\n", 1
        )
    )
    with pytest.raises(SpecError) as info:
        api.load(spec)
    messages = [d.message for d in info.value.diagnostics]
    assert any("delimiter must be one character" in m for m in messages)
    assert any("unknown text encoding 'klingon'" in m for m in messages)


def test_a_bad_list_key_is_reported_at_its_line_after_empty_ones(tmp_path: Path) -> None:
    files = {"contacts.csv": CONTACTS, "vip.csv": "contact_id\n1\n\n\n2.0\n"}
    seg = "  vip: {where: {all: []}, include_file: vip.csv}\n"
    assert data_error(project(tmp_path, files, segments=seg)) == (
        "list file vip.csv:5: column 'contact_id': cannot parse '2.0' as Int64"
    )


def test_a_naive_parquet_time_in_the_skipped_dst_hour_is_a_data_error(tmp_path: Path) -> None:
    times = ["2026-03-28T02:30:00", "2026-03-29T02:30:00"]  # Berlin skips 02:00-03:00 on the 29th
    pl.DataFrame({"contact_id": [1, 2], "seen": times}).with_columns(
        pl.col("seen").str.to_datetime()
    ).write_parquet(tmp_path / "contacts.parquet")
    spec = project(tmp_path, {}, segments="  seen: {where: {field: seen, lt: 2026-04-01}}\n")
    spec.write_text(
        spec.read_text()
        .replace("contacts.csv", "contacts.parquet")
        .replace("version: 1\n", "version: 1\ntimezone: Europe/Berlin\n")
    )
    assert data_error(spec) == (
        "contacts.parquet: row 2: column 'seen': 2026-03-29 02:30:00 does not exist in "
        "Europe/Berlin (the clocks skip that hour); write the time with its offset, or correct it"
    )


def test_the_csv_cache_is_removed_when_the_process_ends(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    files = {"contacts.csv": CONTACTS, "purchases.csv": PURCHASES}
    spec = project(tmp_path, files, PURCHASE_SOURCE, BUYERS)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code = (
        "import os, sys, tempfile; from segcli import api; p = api.load(sys.argv[1]); "
        "print(p.catalog.frame('purchases').collect().height, "
        "len(os.listdir(tempfile.gettempdir())))"
    )
    env = {**os.environ, "TMPDIR": str(tmp)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(spec)], env=env, capture_output=True, text=True
    )
    assert out.stdout.split() == ["2", "1"], out.stderr  # rows read, one cache folder made
    assert list(tmp.iterdir()) == []
