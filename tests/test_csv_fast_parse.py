"""CSV columns take a cheaper parse for the way the sample is written (engines/csv_stream.py):
it must give the same values as the full parse, fall back to it for any batch written
otherwise, and never accept a value the full parse rejects. Type inference matches the same
patterns on a whole column at once as one value at a time."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segcli.engines import csv_sample as cs
from segcli.engines import csv_stream
from segcli.engines.csv_stream import CsvSource, parse_text
from segcli.errors import DataError
from segcli.spec.model import Source

SAMPLE = 50  # rows sampled per file in these tests, so that later rows are past the sample


@pytest.fixture(autouse=True)
def _small_sample(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cs, "SAMPLE_ROWS", SAMPLE)
    monkeypatch.setattr(csv_stream, "_ARROW_MIN_BYTES", 0)  # the Arrow cast on small files too
    monkeypatch.chdir(tmp_path)


def _source(tmp_path: Path, rows: list[tuple[str, str]]) -> CsvSource:
    path = tmp_path / "events.csv"
    body = "".join(f"{k},{t}\n" for k, t in rows)
    path.write_text("contact_id,occurred_at\n" + body, encoding="utf-8")
    src = Source(name="events", path="events.csv", key="contact_id", time="occurred_at")
    return CsvSource.open(src, [path], "Europe/Berlin")


def _read(source: CsvSource) -> pl.DataFrame:
    return source.frame("int").collect(engine="streaming")


def _full(values: list[str], typ: str) -> pl.Series:
    raw = pl.Series("v", values, dtype=pl.String)
    return pl.DataFrame([raw]).select(parse_text(pl.col("v"), typ, "Europe/Berlin")).to_series()


ZULU = "2026-05-04T10:26:36.120822Z"
OTHER_STYLES = [
    "2026-05-04 10:26:36.120822Z",  # a space: the same width and `Z`, read alike
    "2026-05-04T12:26:36.120822+02:00",  # an offset
    "2026-05-04T10:26:36Z",  # another width
    "2026-05-04T12:26:36.120822",  # naive: local time (Berlin)
    "2026-05-04T10:26:36.120822z",  # a lower-case z
    "2026-05-04",  # a date: local midnight
    " 2026-05-04T10:26:36.12082Z",  # a blank around it, at the sample's width
]


@pytest.mark.parametrize("odd", OTHER_STYLES)
def test_zulu_times_past_the_sample_in_another_style_read_as_the_full_parse(
    tmp_path: Path, odd: str
) -> None:
    times = [ZULU.replace("36.12", f"{i % 60:02d}.12") for i in range(SAMPLE * 3)]
    times[SAMPLE * 2] = odd
    got = _read(_source(tmp_path, [(str(i), t) for i, t in enumerate(times)]))
    assert got["occurred_at"].equals(_full(times, "datetime").alias("occurred_at"))
    assert got["occurred_at"].null_count() == 0


@pytest.mark.parametrize(
    "bad",
    [
        "2026-05-04T10:26:36.1208+01",  # Arrow reads `+01`; segcli does not
        "2026-05-04T10:26:36.12082ZZ",
        "2026-13-04T10:26:36.120822Z",
        '"2026-05-04T10:26:36,120822Z"',
    ],
)
def test_a_bad_time_past_the_sample_is_located_not_accepted(tmp_path: Path, bad: str) -> None:
    times = [ZULU] * (SAMPLE * 3)
    times[SAMPLE * 2 + 1] = bad
    with pytest.raises(DataError) as info:
        _read(_source(tmp_path, [(str(i), t) for i, t in enumerate(times)]))
    line = SAMPLE * 2 + 1 + 2  # the header is line 1
    assert f"events.csv:{line}: column 'occurred_at'" in info.value.message
    assert repr(bad.strip('"')) in info.value.message


@pytest.mark.parametrize("odd", [" 7", "7 ", "+7", "007"])
def test_integer_keys_past_the_sample_written_otherwise_read_as_the_full_parse(
    tmp_path: Path, odd: str
) -> None:
    keys = [str(i) for i in range(SAMPLE * 3)]
    keys[SAMPLE * 2] = f'"{odd}"'
    got = _read(_source(tmp_path, [(k, ZULU) for k in keys]))
    want = _full([k.strip('"') for k in keys], "int")
    assert got["contact_id"].equals(want.alias("contact_id"))


VALUES = st.one_of(
    st.sampled_from(
        ["1", "-0", "01", "1.5", ".5", "1e3", "true", "False", "2026-01-02", "2026-01-02 10:00",
         "2026-01-02T10:00:00.5+0100", "2026-01-02T10:00:00Z", "١٢٣", "x", "1\n", "NaN"]
    ),
    st.text(alphabet="0123456789-:.TZ+eE ", max_size=12),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=20))
def test_inference_counts_whole_columns_as_one_value_at_a_time(values: list[str]) -> None:
    stripped = [v.strip() for v in values]
    counts = cs.look_counts({"v": (stripped, cs.ANY_TYPE)})["v"]
    for typ in cs.ANY_TYPE:
        assert counts[typ] == sum(1 for v in stripped if cs._LOOKS[typ](v)), typ


def test_zulu_times_take_the_arrow_cast_and_others_a_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zulu = _source(tmp_path, [(str(i), ZULU) for i in range(SAMPLE)])
    fast = zulu._fast_parse("occurred_at", "datetime")
    assert fast is not None and fast.__qualname__.startswith("_zulu_parse")
    offset = _source(tmp_path, [(str(i), OTHER_STYLES[1]) for i in range(SAMPLE)])
    fast = offset._fast_parse("occurred_at", "datetime")
    assert fast is not None and not fast.__qualname__.startswith("_zulu_parse")
    monkeypatch.setattr(csv_stream, "_ARROW_MIN_BYTES", 1 << 20)  # small files: Polars alone
    fast = zulu._fast_parse("occurred_at", "datetime")
    assert fast is not None and not fast.__qualname__.startswith("_zulu_parse")


@pytest.mark.parametrize("name", ["events.csv", "events.csv.gz"])
def test_empty_last_cells_without_quotes_need_no_line_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A quote-free file whose delimiters add up to a full header and full rows cannot hold a
    short row (Polars rejects long ones): its empty last cells are nulls, no lines scanned."""
    body = "contact_id,occurred_at,url\n" + "".join(
        f"{i},{ZULU},{'/x' if i % 3 else ''}\n" for i in range(SAMPLE * 3)
    )
    path = tmp_path / name
    path.write_bytes(gzip.compress(body.encode()) if name.endswith(".gz") else body.encode())
    src = Source(name="events", path=name, key="contact_id", time="occurred_at")
    source = CsvSource.open(src, [path], "UTC")

    def scanned(*args: object) -> None:
        raise AssertionError("the lines were scanned")

    monkeypatch.setattr(CsvSource, "_short_rows", scanned)
    got = source.frame("int").collect(engine="streaming")
    assert got.height == SAMPLE * 3
    assert got["url"].null_count() == SAMPLE


@pytest.mark.parametrize("row", ["5", "5,2026-05-04T10:26:36.120822Z"])
def test_a_short_row_in_a_quote_free_file_is_still_found(tmp_path: Path, row: str) -> None:
    body = "contact_id,occurred_at,url\n" + "".join(
        f"{i},{ZULU},{'/x' if i % 3 else ''}\n" for i in range(SAMPLE * 3)
    )
    lines = body.splitlines()
    lines[SAMPLE * 2] = row
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    src = Source(name="events", path="events.csv", key="contact_id", time="occurred_at")
    with pytest.raises(DataError) as info:
        CsvSource.open(src, [tmp_path / "events.csv"], "UTC").frame("int").collect()
    assert f"events.csv:{SAMPLE * 2 + 1}: this row has" in info.value.message


def test_a_source_read_whole_by_its_sample_takes_the_full_parse(tmp_path: Path) -> None:
    # Looking for a cheaper parse costs more than the full parse of a file this small.
    times = [ZULU.replace("36.12", f"{i % 60:02d}.12") for i in range(SAMPLE - 1)]
    times[3] = OTHER_STYLES[1]
    source = _source(tmp_path, [(str(i), t) for i, t in enumerate(times)])
    assert source._fast_parse("occurred_at", "datetime") is None
    got = _read(source)
    assert got["occurred_at"].equals(_full(times, "datetime").alias("occurred_at"))
    longer = _source(tmp_path, [(str(i), ZULU) for i in range(SAMPLE + 1)])
    assert longer._fast_parse("occurred_at", "datetime") is not None
