"""Contacts and list files as the engines read them: keys checked unique and non-null,
relation-one sources joined as SOURCE.COL, list keys cast to the contact key's type."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from segcli.engines.catalog import Catalog, display_path, short_error
from segcli.errors import DataError
from segcli.spec import model as m


def read_list(spec: m.Spec, rel: str, key_dtype: pl.DataType) -> pl.Series:
    """A list file's keys (one column named like the contacts key), cast to the key's type."""
    path = Path(spec.base_dir) / rel
    key = spec.contacts.key
    try:
        df = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"list file {rel}: cannot read: {short_error(exc)}") from exc
    if key not in df.columns:
        raise DataError(
            f"list file {rel}: needs a column named '{key}' (has: {', '.join(df.columns)})"
        )
    raw = df[key].str.strip_chars()
    cast = raw.cast(key_dtype, strict=False)
    bad = raw.is_not_null() & (raw != "") & cast.is_null()
    if bad.any():
        at = int(bad.arg_true()[0])  # rows counted with the empty ones, so the line is right
        raise DataError(
            f"list file {rel}:{at + 2}: column '{key}': cannot parse {raw[at]!r} as {key_dtype}"
        )
    return cast.drop_nulls().unique()


def row_ref(catalog: Catalog, source: str, index: int, short: bool = False) -> str:
    """Where row `index` (0-based, of the source's rows) is: `file.csv:LINE` for CSV,
    `file.parquet: row N` for one Parquet file, `source 'x' row N` for several."""
    files = catalog.files(source)
    if catalog.is_csv(source):
        # Counted by records, so a quoted value spanning lines does not shift the line.
        path, line = catalog.csv(source).locate_row(index)
        if short and len(files) == 1:
            return f"line {line}"
        return f"{display_path(path)}:{line}"
    if len(files) > 1:
        return f"source '{source}' row {index + 1}"
    shown = display_path(files[0])
    return f"row {index + 1}" if short else f"{shown}: row {index + 1}"


def load_contacts(spec: m.Spec, catalog: Catalog, columns: set[str] | None = None) -> pl.DataFrame:
    """Contacts with relation-one sources joined as SOURCE.COL; keys checked unique, non-null.

    `columns`: only these columns (plus the key) are read; None reads them all.
    """
    key = spec.contacts.key
    lf = catalog.frame("contacts")
    if columns is not None:
        own = [c for c in lf.collect_schema() if c == key or c in columns]
        lf = lf.select(own)
    df = lf.collect()
    if df.height == 0:
        shown = ", ".join(display_path(f) for f in catalog.files("contacts")[:3])
        raise DataError(f"{shown}: the contacts export has no rows")
    nulls = df[key].is_null()
    if nulls.any():
        row = int(nulls.arg_true()[0])
        n = int(nulls.sum())
        raise DataError(
            f"{row_ref(catalog, 'contacts', row)}: contact key '{key}' is empty"
            + (f" ({n} rows have no key)" if n > 1 else "")
        )
    # One hash pass in the common case; the row-level detail only when something repeats.
    unique = df[key].n_unique() == df.height
    again = None if unique else df[key].is_duplicated() & ~df[key].is_first_distinct()
    if again is not None and again.any():
        row = int(again.arg_true()[0])
        value = df[key][row]
        first = int((df[key] == value).arg_true()[0])
        n = int(again.sum())
        raise DataError(
            f"{row_ref(catalog, 'contacts', row)}: duplicate contact key {key}={value!r} "
            f"(first at {row_ref(catalog, 'contacts', first, short=True)})"
            + (f"; {n} rows repeat an earlier key" if n > 1 else "")
        )
    for name, src in spec.sources.items():
        if name == "contacts" or src.relation != "one":
            continue
        one_lf = catalog.frame(name)
        if columns is not None:
            wanted = [
                c for c in one_lf.collect_schema() if c == src.key or f"{name}.{c}" in columns
            ]
            one_lf = one_lf.select(wanted)
        one = one_lf.collect()
        one = one.with_columns(pl.col(src.key).cast(df[key].dtype, strict=False))
        dup = (
            one[src.key].is_duplicated()
            & ~one[src.key].is_first_distinct()
            & one[src.key].is_not_null()
        )
        if dup.any():
            row = int(dup.arg_true()[0])
            raise DataError(
                f"{row_ref(catalog, name, row)}: source '{name}' is relation: one but key "
                f"{src.key}={one[src.key][row]!r} has several rows"
            )
        renamed = {c: f"{name}.{c}" for c in one.columns if c != src.key}
        one = one.rename(renamed).rename({src.key: key})
        df = df.join(one, on=key, how="left", coalesce=True, maintain_order="left")
    return df if df[key].is_sorted() else df.sort(key)
