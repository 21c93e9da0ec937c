"""The synthetic export generator: deterministic, exact sizes, the documented shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from segcli.demo import sample

ANCHOR = datetime(2026, 11, 20, tzinfo=UTC)
SIZES = {"contacts": 600, "email_events": 24_000, "web_events": 15_000}

CONTACTS_SCHEMA = {
    "contact_id": pl.Int64,
    "email": pl.String,
    "first_name": pl.String,
    "last_name": pl.String,
    "title": pl.String,
    "company": pl.String,
    "company_id": pl.String,
    "state": pl.String,
    "country": pl.String,
    "lifecycle_stage": pl.String,
    "owner": pl.String,
    "plan": pl.String,
    "trial_started_at": pl.Datetime("us", "UTC"),
    "age": pl.Int64,
    "gender": pl.String,
    "language": pl.String,
    "created_at": pl.Datetime("us"),
}
EMAIL_SCHEMA = {
    "contact_id": pl.Int64,
    "occurred_at": pl.Datetime("us", "UTC"),
    "event_type": pl.String,
    "campaign_id": pl.String,
    "url": pl.String,
}
WEB_SCHEMA = {
    "contact_id": pl.Int64,
    "occurred_at": pl.Datetime("us", "UTC"),
    "event_type": pl.String,
    "page": pl.String,
    "asset": pl.String,
    "term": pl.String,
    "event_name": pl.String,
    "session_id": pl.String,
}
CRM_SCHEMA = {
    "contact_id": pl.Int64,
    "lead_status": pl.String,
    "opportunity_stage": pl.String,
    "crm_owner": pl.String,
    "updated_at": pl.Datetime("us", "UTC"),
}
PURCHASES_SCHEMA = {
    "order_id": pl.String,
    "contact_id": pl.Int64,
    "purchased_at": pl.Datetime("us", "UTC"),
    "amount": pl.Float64,
    "currency": pl.String,
    "product": pl.String,
}


def _generate(
    out: Path, *, fmt: str = "csv", seed: int = 42, web_events: int = SIZES["web_events"]
) -> dict[str, Path]:
    return sample.generate(
        out,
        contacts=SIZES["contacts"],
        email_events=SIZES["email_events"],
        web_events=web_events,
        seed=seed,
        fmt=fmt,
    )


def _holds(frame: pl.DataFrame, condition: pl.Expr) -> bool:
    return bool(frame.select(condition.all()).item())


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("csv")
    _generate(out)
    return out


@pytest.fixture(scope="module")
def parquet_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _generate(tmp_path_factory.mktemp("parquet"), fmt="parquet")


@pytest.fixture(scope="module")
def tables(parquet_paths: dict[str, Path]) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(path) for name, path in parquet_paths.items()}


def _bytes(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*.*"))}


def test_same_seed_gives_the_same_bytes(csv_dir: Path, tmp_path: Path) -> None:
    _generate(tmp_path)
    assert _bytes(tmp_path) == _bytes(csv_dir)


def test_another_seed_gives_other_data(csv_dir: Path, tmp_path: Path) -> None:
    _generate(tmp_path, seed=7)
    assert (tmp_path / "email_events.parquet").read_bytes() != (
        csv_dir / "email_events.parquet"
    ).read_bytes()


def test_one_table_size_leaves_the_others_unchanged(csv_dir: Path, tmp_path: Path) -> None:
    _generate(tmp_path, web_events=9_000)
    for name in ("contacts.csv", "crm_leads.csv", "purchases.csv", "email_events.parquet"):
        assert (tmp_path / name).read_bytes() == (csv_dir / name).read_bytes(), name


def test_paths_and_formats(csv_dir: Path, parquet_paths: dict[str, Path]) -> None:
    assert sorted(p.name for p in csv_dir.iterdir()) == [
        "contacts.csv",
        "crm_leads.csv",
        "email_events.parquet",
        "purchases.csv",
        "web_events.parquet",
    ]
    assert {name: path.name for name, path in parquet_paths.items()} == {
        name: f"{name}.parquet" for name in sample.TABLES
    }


@pytest.mark.parametrize(
    ("table", "schema"),
    [
        ("contacts", CONTACTS_SCHEMA),
        ("email_events", EMAIL_SCHEMA),
        ("web_events", WEB_SCHEMA),
        ("crm_leads", CRM_SCHEMA),
        ("purchases", PURCHASES_SCHEMA),
    ],
)
def test_parquet_schemas(
    tables: dict[str, pl.DataFrame], table: str, schema: dict[str, pl.DataType]
) -> None:
    assert dict(tables[table].schema) == schema


def test_csv_columns_and_inferred_types(csv_dir: Path) -> None:
    expected = {"contacts": CONTACTS_SCHEMA, "crm_leads": CRM_SCHEMA, "purchases": PURCHASES_SCHEMA}
    for name, schema in expected.items():
        frame = pl.read_csv(csv_dir / f"{name}.csv", try_parse_dates=True)
        assert dict(frame.schema) == schema, name


def test_csv_timestamp_styles(csv_dir: Path) -> None:
    second = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
    styles = {
        ("contacts", "created_at"): rf"{second}",
        ("contacts", "trial_started_at"): rf"{second}\+00:00",
        ("crm_leads", "updated_at"): rf"{second}Z",
        ("purchases", "purchased_at"): rf"{second}\+0[12]:00",
    }
    for (table, column), pattern in styles.items():
        text = pl.read_csv(csv_dir / f"{table}.csv", infer_schema=False)[column].drop_nulls()
        assert len(text) > 0
        assert text.str.contains(f"^{pattern}$").all(), (table, column)


def test_sizes_are_exact(tables: dict[str, pl.DataFrame]) -> None:
    assert {name: tables[name].height for name in SIZES} == SIZES


def test_default_event_sizes_follow_contacts(tmp_path: Path) -> None:
    paths = sample.generate(tmp_path, contacts=50)
    heights = {name: pl.read_parquet(paths[name]).height for name in ("email_events", "web_events")}
    assert heights == {"email_events": 50 * 40, "web_events": 50 * 25}


def test_keys(tables: dict[str, pl.DataFrame]) -> None:
    contacts = tables["contacts"]["contact_id"]
    assert contacts.to_list() == list(range(1, SIZES["contacts"] + 1))
    crm = tables["crm_leads"]["contact_id"]
    assert crm.is_unique().all()
    assert crm.is_in(contacts.implode()).all()
    assert 0.45 < crm.len() / contacts.len() < 0.75


def test_purchases_repeat_some_orders_exactly(tables: dict[str, pl.DataFrame]) -> None:
    purchases = tables["purchases"]
    repeated = purchases.filter(pl.col("order_id").is_duplicated())
    assert repeated.height > 0
    assert repeated.unique().height * 2 == repeated.height  # whole rows repeat, not just ids
    buyers = purchases["contact_id"].n_unique() / SIZES["contacts"]
    assert 0.08 < buyers < 0.25
    assert _holds(purchases.group_by("contact_id").len(), pl.col("len").max() > 1)  # repeat buyers
    assert set(purchases["currency"]) == {"EUR", "USD"}


@pytest.mark.parametrize("table", ["email_events", "web_events"])
def test_events_have_orphans_and_future_rows(tables: dict[str, pl.DataFrame], table: str) -> None:
    events = tables[table]
    orphans = events.filter(pl.col("contact_id") > SIZES["contacts"]).height
    future = events.filter(pl.col("occurred_at") > ANCHOR).height
    assert 0 < orphans <= 0.002 * events.height
    assert 0 < future <= 0.004 * events.height
    at = pl.col("occurred_at")
    assert _holds(events, at.is_between(ANCHOR - timedelta(days=400), ANCHOR + timedelta(days=14)))
    assert events["occurred_at"].is_sorted()


def test_timestamps_stay_in_the_window(tables: dict[str, pl.DataFrame]) -> None:
    start = ANCHOR - timedelta(days=400)
    naive = pl.col("created_at").is_between(start.replace(tzinfo=None), ANCHOR.replace(tzinfo=None))
    assert _holds(tables["contacts"], naive)
    assert _holds(tables["crm_leads"], pl.col("updated_at").is_between(start, ANCHOR))
    purchases = tables["purchases"]
    assert _holds(purchases, pl.col("purchased_at") >= start)
    future = purchases.filter(pl.col("purchased_at") > ANCHOR).height
    assert 0 < future < 0.01 * purchases.height


def test_activity_is_skewed(tables: dict[str, pl.DataFrame]) -> None:
    for table in ("email_events", "web_events"):
        per_contact = tables[table].group_by("contact_id").len()
        assert _holds(per_contact, pl.col("len").max() > 10 * pl.col("len").median()), table
    active = pl.concat([tables[t]["contact_id"] for t in ("email_events", "web_events")])
    silent = tables["contacts"].filter(~pl.col("contact_id").is_in(active.implode()))
    assert 0.02 < silent.height / SIZES["contacts"] < 0.15


def test_email_funnel(tables: dict[str, pl.DataFrame]) -> None:
    email = tables["email_events"]
    counts = dict(email["event_type"].value_counts().iter_rows())
    assert counts["sent"] > counts["delivered"] > counts["open"] > counts["click"] > 0
    assert {"soft_bounce", "unsubscribe"} <= counts.keys()
    assert email.filter(pl.col("url").is_not_null())["event_type"].unique().to_list() == ["click"]
    assert email.filter(pl.col("event_type") == "click")["url"].null_count() == 0
    assert email["campaign_id"].str.contains(r"^cmp-\d{4}-\d{3}$").all()


def test_web_columns_belong_to_their_types(tables: dict[str, pl.DataFrame]) -> None:
    web = tables["web_events"]
    for column, kind in (("asset", "download"), ("term", "search"), ("event_name", "custom")):
        typed = web.filter(pl.col("event_type") == kind)
        assert typed[column].null_count() == 0, column
        assert web.filter(pl.col("event_type") != kind)[column].null_count() == web.height - len(
            typed
        )
    assert web["page"].null_count() == 0
    assert set(web["asset"].drop_nulls()) == {asset for asset, _, _ in sample.ASSET_SCORES}


def test_accounts_group_contacts_of_one_company(tables: dict[str, pl.DataFrame]) -> None:
    contacts = tables["contacts"]
    assert 0.1 < contacts["company_id"].null_count() / contacts.height < 0.3
    sizes = contacts.drop_nulls("company_id").group_by("company_id").len()["len"]
    assert sizes.max() >= 5 and (sizes == 1).sum() > 0  # a few large accounts, many small
    # an account belongs to one company
    per_account = (
        contacts.drop_nulls("company_id").group_by("company_id").agg(pl.col("company").n_unique())
    )
    assert per_account["company"].max() == 1
    assert contacts["company_id"].drop_nulls().str.contains(r"^ACC-\d{4}$").all()


def test_carts_purchases_and_sessions(tables: dict[str, pl.DataFrame]) -> None:
    web = tables["web_events"].sort("contact_id", "occurred_at", maintain_order=True)
    kinds = set(web["event_type"])
    assert {"add_to_cart", "purchase"} <= kinds
    carts = web.filter(pl.col("event_type") == "add_to_cart")
    assert set(carts["page"]) == {"/cart"} and carts["event_name"].null_count() == carts.height
    bought = web.filter(pl.col("event_type") == "purchase")
    assert set(bought["page"]) == {"/checkout"}
    # Each purchase follows a cart of the same contact minutes earlier, in the same session
    # (but for the few moved after the anchor or given an orphan's id).
    cart_rows = carts.select(
        "contact_id", pl.col("occurred_at").alias("cart_at"), pl.col("session_id").alias("s")
    )
    paired = bought.join_asof(
        cart_rows,
        left_on="occurred_at",
        right_on="cart_at",
        by="contact_id",
        check_sortedness=False,
    ).filter(
        (pl.col("occurred_at") - pl.col("cart_at") <= timedelta(minutes=25))
        & (pl.col("session_id") == pl.col("s"))
    )
    assert paired.height > 0.98 * bought.height
    assert 0.2 < bought.height / carts.height < 0.6
    # A session is one contact's rows with gaps of at most 30 minutes.
    assert web["session_id"].null_count() == 0
    owner = web["session_id"].str.split("-").list.first().cast(pl.Int64)
    real = web.filter(pl.col("contact_id") <= SIZES["contacts"])
    assert (owner.filter(web["contact_id"] <= SIZES["contacts"]) == real["contact_id"]).all()
    spans = (
        real.filter(pl.col("occurred_at") <= ANCHOR)
        .group_by("session_id")
        .agg((pl.col("occurred_at").diff().max()).alias("gap"))
    )
    assert spans["gap"].drop_nulls().max() <= timedelta(minutes=30)


def test_contact_attributes(tables: dict[str, pl.DataFrame]) -> None:
    contacts = tables["contacts"]
    assert (
        contacts.filter(pl.col("country") != "US")["state"].null_count()
        == contacts.filter(pl.col("country") != "US").height
    )
    assert contacts.filter(pl.col("country") == "US")["state"].is_in(["NJ", "NY"]).sum() > 0
    assert contacts.filter(pl.col("plan") == "free")["trial_started_at"].null_count() == (
        contacts.filter(pl.col("plan") == "free").height
    )
    assert contacts.filter(pl.col("plan") != "free")["trial_started_at"].null_count() == 0
    for column in ("email", "title", "country", "owner", "age", "gender"):
        assert 0 < contacts[column].null_count() < 0.4 * contacts.height, column
    assert set(contacts["lifecycle_stage"]) == set(sample.STAGES)


def test_chunked_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sample, "CHUNK_ROWS", 3_000)
    monkeypatch.setattr(sample, "SINGLE_FILE_MAX_ROWS", 5_000)
    paths = sample.generate(tmp_path / "a", contacts=300, email_events=12_000, web_events=4_000)
    assert paths["email_events"] == tmp_path / "a" / "email_events" / "*.parquet"
    assert len(list((tmp_path / "a" / "email_events").iterdir())) == 4
    assert pl.read_parquet(paths["email_events"]).height == 12_000
    assert paths["web_events"] == tmp_path / "a" / "web_events.parquet"
    sample.generate(tmp_path / "b", contacts=300, email_events=12_000, web_events=4_000)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    # A smaller run in the same place must not leave parts behind for the glob to find.
    paths = sample.generate(tmp_path / "a", contacts=300, email_events=1_000, web_events=1_000)
    assert not list((tmp_path / "a" / "email_events").glob("*.parquet"))
    assert pl.read_parquet(paths["email_events"]).height == 1_000


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="contacts"):
        sample.generate(Path("unused"), contacts=0)
    with pytest.raises(ValueError, match="fmt"):
        sample.generate(Path("unused"), fmt="xlsx")


def test_write_demo(tmp_path: Path) -> None:
    paths = sample.write_demo(tmp_path)
    ids = set(range(1, 3001))
    lists = {
        name: pl.read_csv(paths[f"lists/{name}"])["contact_id"].to_list()
        for name in ("vip", "do_not_email", "trade_show")
    }
    assert 999_999 in lists["vip"]
    assert len(set(lists["trade_show"]) - ids) == 1
    assert set(lists["do_not_email"]) <= ids
    assert set(lists["vip"]) & set(lists["do_not_email"])
    assets = pl.read_csv(paths["scoring/assets"])
    assert assets.columns == ["asset", "stage", "ready"]
    assert assets.height == 5
    # The committed demo data is exactly what write_demo writes (segcli init writes it too).
    committed = Path(__file__).resolve().parent.parent / "sample_data"
    for path in paths.values():
        rel = path.relative_to(tmp_path)
        if path.suffix == ".parquet":
            assert pl.read_parquet(committed / rel).equals(pl.read_parquet(path)), rel
        else:
            assert (committed / rel).read_bytes() == path.read_bytes(), rel
