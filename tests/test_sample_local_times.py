"""`segcli sample --format csv` writes naive times the demo project's timezone can read."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from segcli.demo import sample
from segcli.engines.catalog import Catalog
from segcli.spec.model import Source


def test_naive_created_at_never_falls_in_a_dst_gap(tmp_path: Path) -> None:
    # 20,000 contacts spread over 400 days put a few creations in the spring-forward hour
    # (a UTC wall time 02:xx on the last Sunday of March does not exist in Berlin).
    sample.generate(tmp_path, contacts=20_000, email_events=10, web_events=10, fmt="csv")
    text = pl.read_csv(tmp_path / "contacts.csv", infer_schema=False)["created_at"]
    naive = text.str.to_datetime("%Y-%m-%dT%H:%M:%S")
    local = naive.dt.replace_time_zone(sample.LOCAL_TZ, non_existent="null", ambiguous="earliest")
    assert local.null_count() == 0
    # And segcli reads its own sample in the demo project's timezone without complaint.
    src = Source(name="contacts", path="contacts.csv", key="contact_id")
    frame = Catalog(str(tmp_path), sample.LOCAL_TZ, {"contacts": src}).frame("contacts").collect()
    assert frame["created_at"].null_count() == 0
    assert frame.height == 20_000
