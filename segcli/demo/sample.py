"""Seeded synthetic marketing exports for demos, tests and benchmarks.

`generate` writes five tables (contacts, crm_leads, purchases, email_events, web_events)
whose shapes mimic real exports: a few very active contacts and many quiet ones, ~5% of
contacts with no events at all, ~0.1% orphan event rows (a contact id that is not in
contacts), ~0.2% event and purchase rows dated after the anchor, and ~2% purchase rows
repeated by a re-export. Everything is vectorised (numpy draws, polars frames); event tables
are generated and written in chunks so memory stays flat at any size.

The output depends only on the seed and the sizes: each table (and each chunk of an event
table) draws from its own random stream, so changing `web_events` leaves `email_events`
and contacts unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = ["TABLES", "generate", "write_demo"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

TABLES = ("contacts", "crm_leads", "purchases", "email_events", "web_events")

DEFAULT_ANCHOR = datetime(2026, 11, 20, tzinfo=UTC)
DEMO_CONTACTS = 3000
DEMO_SEED = 42
EMAIL_ROWS_PER_CONTACT = 40
WEB_ROWS_PER_CONTACT = 25
CHUNK_ROWS = 2_000_000  # rows generated (and written) at a time
SINGLE_FILE_MAX_ROWS = 5_000_000  # above this an event table becomes a directory of parts
# The demo project's timezone. Naive timestamps are its wall-clock times of real instants, so
# none of them falls in a DST gap (a UTC wall time read as Berlin time can: 02:30 on the last
# Sunday of March does not exist there).
LOCAL_TZ = "Europe/Berlin"

US = 1_000_000  # microseconds per second
HOUR = 3600 * US
DAY = 24 * HOUR
WINDOW = 400 * DAY  # every regular timestamp lies in [anchor - WINDOW, anchor]
FUTURE_SHARE = 0.002
ORPHAN_SHARE = 0.001
SILENT_SHARE = 0.05  # contacts with no events at all
DUPLICATE_SHARE = 0.02

# Stream ids: one random stream per table, so sizes of one table never change another.
# Accounts and web sessions/carts came later: their own streams leave the older columns as
# they were.
_CONTACTS, _BEHAVIOUR, _EMAIL, _WEB, _CRM, _PURCHASES, _CAMPAIGNS, _LISTS = range(8)
_ACCOUNTS, _SESSIONS = 8, 9

FIRST_NAMES = (
    ("Anna", "anna"), ("Ben", "ben"), ("Chloé", "chloe"), ("Dorian", "dorian"), ("Elena", "elena"),
    ("Fatima", "fatima"), ("Gabriel", "gabriel"), ("Hannah", "hannah"), ("Ionuț", "ionut"),
    ("Jürgen", "juergen"), ("Kevin", "kevin"), ("Laura", "laura"), ("Mateo", "mateo"),
    ("Nina", "nina"), ("Oliver", "oliver"), ("Putri", "putri"), ("Quentin", "quentin"),
    ("Rina", "rina"), ("Sofia", "sofia"), ("Tomás", "tomas"), ("Uma", "uma"),
    ("Valentin", "valentin"), ("Wulan", "wulan"), ("Xhesika", "xhesika"), ("Yusuf", "yusuf"),
    ("Zoë", "zoe"), ("Agus", "agus"), ("Besnik", "besnik"), ("Camille", "camille"),
    ("David", "david"), ("Emily", "emily"), ("Florin", "florin"), ("Grace", "grace"),
    ("Henrik", "henrik"), ("Isabelle", "isabelle"), ("James", "james"),
)  # fmt: skip
LAST_NAMES = (
    ("Müller", "mueller"), ("Schmidt", "schmidt"), ("Dubois", "dubois"), ("Martin", "martin"),
    ("Smith", "smith"), ("Johnson", "johnson"), ("Brown", "brown"), ("Williams", "williams"),
    ("Hoxha", "hoxha"), ("Çela", "cela"), ("Popescu", "popescu"), ("Ionescu", "ionescu"),
    ("Santoso", "santoso"), ("Wijaya", "wijaya"), ("Garcia", "garcia"), ("Rossi", "rossi"),
    ("Nguyen", "nguyen"), ("O'Brien", "obrien"), ("Lefèvre", "lefevre"), ("Fischer", "fischer"),
    ("Taylor", "taylor"), ("Kowalski", "kowalski"), ("Dumitru", "dumitru"),
    ("Krasniqi", "krasniqi"), ("Lee", "lee"), ("Walker", "walker"), ("Novak", "novak"),
    ("Weber", "weber"),
)  # fmt: skip
COMPANIES = (
    ("Acme Corp", "acme.com"), ("Globex", "globex.com"), ("Initech", "initech.com"),
    ("Umbrella Retail", "umbrella-retail.com"), ("Stark Logistics", "starklogistics.com"),
    ("Wayne Foods", "waynefoods.com"), ("Nordwind GmbH", "nordwind.de"),
    ("Bleu Marine SA", "bleumarine.fr"), ("Tirana Tech", "tiranatech.al"),
    ("Nusantara Digital", "nusantara.co.id"), ("Carpați Soft", "carpatisoft.ro"),
    ("Thames Analytics", "thamesanalytics.co.uk"), ("Hooli", "hooli.com"),
    ("Vandelay Industries", "vandelay.com"), ("Soylent", "soylent.com"),
    ("Cyberdyne", "cyberdyne.io"),
    ("Pied Piper", "piedpiper.com"), ("Massive Dynamic", "massivedynamic.com"),
    ("Blue Sun", "bluesun.com"), ("Tyrell", "tyrell.com"), ("Oscorp", "oscorp.com"),
    ("Gringotts", "gringotts.co.uk"), ("Bäckerei Sonne", "baeckerei-sonne.de"),
    ("Maison Lumière", "maisonlumiere.fr"),
)  # fmt: skip
# Accounts (B2B): a company's contacts sit in one of its accounts (subsidiaries, offices),
# a few large and many small; contacts not matched to any account have none.
ACCOUNTS_PER_COMPANY = 24
ACCOUNT_P = tuple(1 / (k + 1) ** 1.1 for k in range(ACCOUNTS_PER_COMPANY))
NO_ACCOUNT_SHARE = 0.2
FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "web.de", "gmx.de", "orange.fr")
TITLES = (
    "VP Marketing", "VP Sales", "Vice President of Engineering", "Marketing Manager", "CMO",
    "Director of Sales", "Analyst", "Founder", "Head of Growth", "Software Engineer",
    "Sales Development Rep", "Chief Executive Officer", None,
)  # fmt: skip
TITLE_P = (0.05, 0.05, 0.03, 0.16, 0.03, 0.06, 0.15, 0.06, 0.05, 0.14, 0.07, 0.03, 0.12)
COUNTRIES = ("US", "DE", "FR", "GB", "ID", "AL", "RO", None)
COUNTRY_P = (0.40, 0.14, 0.10, 0.10, 0.08, 0.06, 0.07, 0.05)
COUNTRY_LANGUAGE = ("en", "de", "fr", "en", "id", "sq", "ro", "en")
EURO_COUNTRIES = (1, 2, 3, 5, 6)  # DE, FR, GB, AL, RO pay in EUR; everyone else in USD
US_STATES = ("NJ", "NY", "CA", "TX", "MA", "PA", "FL", "IL", "WA", "GA", "NC", "CO", "OH", "VA")
US_STATE_P = (0.12, 0.15, 0.15, 0.10, 0.06, 0.06, 0.07, 0.05, 0.05, 0.04, 0.04, 0.04, 0.04, 0.03)
LANGUAGES = ("en", "de", "fr", "sq", "id", "ro")
STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
STAGE_P = (0.35, 0.25, 0.15, 0.08, 0.05, 0.12)
PLANS = ("free", "trial", "paid")
OWNERS = (
    "Dana Whitfield", "Marco Rossi", "Priya Nair", "Jonas Becker", "Elira Hoxha", "Sam Carter",
)  # fmt: skip
GENDERS = ("f", "m", "x", None)
GENDER_P = (0.46, 0.46, 0.03, 0.05)

EMAIL_TYPES = (
    "sent", "delivered", "open", "click", "hard_bounce", "soft_bounce", "unsubscribe",
)  # fmt: skip
SENT, DELIVERED, OPEN, CLICK, HARD_BOUNCE, SOFT_BOUNCE, UNSUBSCRIBE = range(len(EMAIL_TYPES))
CLICK_URLS = (
    "https://example.com/pricing?utm_source=newsletter&utm_medium=email",
    "https://example.com/pricing?utm_source=nurture&utm_medium=email",
    "/product/analytics",
    "/product/automation",
    "/services/premium-support",
    "/blog/segmentation-101",
    "/blog/lead-scoring-guide",
    "/blog/email-deliverability",
    "https://example.com/webinar/register?utm_source=newsletter",
    "/resources/pricing-guide",
)
CLICK_URL_P = (0.14, 0.06, 0.16, 0.14, 0.08, 0.12, 0.10, 0.08, 0.06, 0.06)

WEB_TYPES = ("page_view", "download", "form_submit", "search", "custom")
WEB_TYPE_P = (0.72, 0.06, 0.03, 0.07, 0.12)
PAGE_VIEW, DOWNLOAD, FORM_SUBMIT, SEARCH, CUSTOM = range(len(WEB_TYPES))
VIEW_PAGES = (
    "/", "/pricing", "/product/analytics", "/product/automation", "/services/premium-support",
    "/blog/segmentation-101", "/blog/lead-scoring-guide", "/blog/email-deliverability",
    "/docs/api", "/about", "/careers", "/cart", "/checkout",
)  # fmt: skip
VIEW_PAGE_P = (0.18, 0.12, 0.10, 0.09, 0.05, 0.08, 0.07, 0.06, 0.07, 0.04, 0.03, 0.06, 0.05)
ASSETS = (
    "pricing-guide", "whitepaper-automation", "case-study-retail", "ebook-segmentation",
    "webinar-recording",
)  # fmt: skip
ASSET_P = (0.25, 0.22, 0.18, 0.20, 0.15)
FORM_PAGES = ("/demo", "/contact", "/pricing", "/webinar/register")
FORM_PAGE_P = (0.35, 0.30, 0.20, 0.15)
TERMS = (
    "premium support", "pricing", "api", "analytics", "automation", "segmentation", "gdpr",
    "integrations",
)  # fmt: skip
TERM_P = (0.12, 0.20, 0.15, 0.14, 0.13, 0.10, 0.06, 0.10)
CUSTOM_EVENTS = ("trial_login", "add_to_cart", "feature_used")
CUSTOM_EVENT_P = (0.40, 0.20, 0.40)
CUSTOM_PAGES = ("/app/login", "/cart", "/app")
# Web rows drawn as custom add_to_cart become rows of their own type; some carts are bought
# minutes later (the contact's next row becomes a purchase on /checkout, in the same
# session). Sessions: a
# contact's rows with gaps of at most SESSION_GAP share a session_id.
WEB_LABELS = (*WEB_TYPES, "add_to_cart", "purchase")
ADD_TO_CART, PURCHASE = len(WEB_TYPES), len(WEB_TYPES) + 1
CART_BOUGHT_SHARE = 0.4
SESSION_GAP = 30 * 60 * US
# Per web event type (rows of WEB_TYPES): how its detail is drawn, and the page of each detail.
WEB_DETAIL_P = (VIEW_PAGE_P, ASSET_P, FORM_PAGE_P, TERM_P, CUSTOM_EVENT_P)
_WEB_DETAIL_PAGES = (
    VIEW_PAGES,
    tuple(f"/resources/{a}" for a in ASSETS),
    FORM_PAGES,
    ("/search",) * len(TERMS),
    CUSTOM_PAGES,
)
PAGES = tuple(dict.fromkeys(page for pages in _WEB_DETAIL_PAGES for page in pages))
WEB_PAGE = np.array(
    [
        [PAGES.index(p) for p in pages] + [-1] * (max(map(len, _WEB_DETAIL_PAGES)) - len(pages))
        for pages in _WEB_DETAIL_PAGES
    ]
)

LEAD_STATUSES = ("new", "working", "nurturing", "qualified", "unqualified")
OPP_STAGES = (None, "prospecting", "proposal", "negotiation", "closed_won", "closed_lost")
# Rows follow STAGES: how likely each lifecycle stage is to be in the CRM, and with what status.
CRM_SHARE = (0.30, 0.60, 0.80, 0.95, 1.00, 0.90)
STATUS_BY_STAGE = (
    (0.45, 0.10, 0.30, 0.00, 0.15),
    (0.35, 0.25, 0.25, 0.00, 0.15),
    (0.05, 0.45, 0.30, 0.15, 0.05),
    (0.00, 0.20, 0.05, 0.75, 0.00),
    (0.00, 0.05, 0.00, 0.95, 0.00),
    (0.00, 0.00, 0.00, 1.00, 0.00),
)
OPP_BY_STAGE = (
    (1.00, 0.00, 0.00, 0.00, 0.00, 0.00),
    (0.95, 0.05, 0.00, 0.00, 0.00, 0.00),
    (0.80, 0.15, 0.00, 0.00, 0.00, 0.05),
    (0.30, 0.50, 0.10, 0.00, 0.00, 0.10),
    (0.00, 0.30, 0.40, 0.25, 0.00, 0.05),
    (0.00, 0.00, 0.00, 0.00, 1.00, 0.00),
)
PRODUCTS = ("analytics", "automation", "premium-support")
PRODUCT_P = (0.45, 0.35, 0.20)
PRODUCT_PRICE = (490.0, 990.0, 2400.0)  # median order amount
BUYER_SHARE = (0.05, 0.05, 0.05, 0.10, 0.20, 0.85)  # by lifecycle stage

ASSET_SCORES = (
    ("pricing-guide", "consideration", 30),
    ("whitepaper-automation", "awareness", 30),
    ("case-study-retail", "consideration", 20),
    ("ebook-segmentation", "awareness", 10),
    ("webinar-recording", "consideration", 15),
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _People:
    """Per-contact attributes that other tables depend on, index i is contact_id i + 1."""

    created: IntArray  # UTC microseconds
    last_active: IntArray  # after this the contact no longer opens email or visits the site
    stage: IntArray
    country: IntArray
    owner: IntArray  # -1: no owner
    email_weight: FloatArray  # relative activity; 0 for the silent contacts
    web_weight: FloatArray
    open_p: FloatArray
    click_p: FloatArray
    bounce_p: FloatArray
    hard_bounce: BoolArray  # the contact's last send hard-bounces
    unsubscribes: BoolArray  # the contact unsubscribes after its last send


@dataclass(frozen=True)
class _Campaigns:
    times: IntArray  # send times, ascending
    labels: pl.Series


def generate(
    out_dir: Path,
    *,
    contacts: int = 3000,
    email_events: int | None = None,
    web_events: int | None = None,
    seed: int = 42,
    fmt: str = "csv",
    anchor: datetime = DEFAULT_ANCHOR,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Write synthetic exports to `out_dir` and return each table's path.

    `contacts`, `email_events` and `web_events` are exact row counts (events default to 40
    and 25 rows per contact). `fmt` ("csv" or "parquet") is the format of contacts,
    crm_leads and purchases; event tables are always Parquet: one file up to 5M rows, else
    a directory of `part-NNN.parquet` files whose path is returned as a glob. Timestamps lie
    in the 400 days before `anchor`, except ~0.2% of event and purchase rows after it.
    """
    if contacts < 1:
        raise ValueError("contacts must be at least 1")
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    n_email = EMAIL_ROWS_PER_CONTACT * contacts if email_events is None else email_events
    n_web = WEB_ROWS_PER_CONTACT * contacts if web_events is None else web_events
    if n_email < 0 or n_web < 0:
        raise ValueError("event counts must not be negative")
    report = progress or (lambda _message: None)
    now = _micros(anchor)
    out_dir.mkdir(parents=True, exist_ok=True)

    report(f"contacts: {contacts:,} rows")
    frame, people = _contacts(
        _rng(seed, _CONTACTS), _rng(seed, _BEHAVIOUR), _rng(seed, _ACCOUNTS), contacts, now
    )
    paths = {"contacts": _write_table(frame, out_dir / "contacts", fmt)}
    report("crm_leads")
    paths["crm_leads"] = _write_table(
        _crm_leads(_rng(seed, _CRM), people, now), out_dir / "crm_leads", fmt
    )
    report("purchases")
    paths["purchases"] = _write_table(
        _purchases(_rng(seed, _PURCHASES), people, now), out_dir / "purchases", fmt
    )
    campaigns = _campaigns(_rng(seed, _CAMPAIGNS), now)
    paths["email_events"] = _write_events(
        out_dir / "email_events",
        _email_chunks(seed, people, campaigns, n_email, now),
        n_email,
        report,
    )
    paths["web_events"] = _write_events(
        out_dir / "web_events", _web_chunks(seed, people, n_web, now), n_web, report
    )
    return paths


def write_demo(out_dir: Path, progress: Progress | None = None) -> dict[str, Path]:
    """Regenerate the README demo data in `out_dir`: the default exports plus lists and scoring.

    Adds `lists/vip.csv`, `lists/do_not_email.csv` and `lists/trade_show.csv` (a
    `contact_id` column; vip and trade_show each hold one id that is not a contact) and
    `scoring/assets.csv` (asset, stage, ready) to what `generate` writes with its defaults.
    """
    paths = generate(out_dir, contacts=DEMO_CONTACTS, seed=DEMO_SEED, progress=progress)
    rng = _rng(DEMO_SEED, _LISTS)
    picked = rng.choice(np.arange(1, DEMO_CONTACTS + 1), size=58, replace=False)
    vip, do_not_email, trade_show = picked[:9], picked[8:18], picked[18:57]
    # vip and do_not_email share one contact, so "exclusion wins" has a case to show.
    lists = {
        "vip": [*vip, 999_999],
        "do_not_email": do_not_email,
        "trade_show": [*trade_show, 999_998],
    }
    (out_dir / "lists").mkdir(exist_ok=True)
    for name, ids in lists.items():
        path = out_dir / "lists" / f"{name}.csv"
        pl.DataFrame({"contact_id": np.asarray(ids, dtype=np.int64)}).write_csv(path)
        paths[f"lists/{name}"] = path
    (out_dir / "scoring").mkdir(exist_ok=True)
    assets = out_dir / "scoring" / "assets.csv"
    pl.DataFrame(ASSET_SCORES, schema=["asset", "stage", "ready"], orient="row").write_csv(assets)
    paths["scoring/assets"] = assets
    return paths


# --- contacts -------------------------------------------------------------------------------


def _contacts(
    rng: np.random.Generator,
    behaviour: np.random.Generator,
    accounts: np.random.Generator,
    n: int,
    now: int,
) -> tuple[pl.DataFrame, _People]:
    ids = np.arange(1, n + 1, dtype=np.int64)
    # Older contacts are more common than new ones: P(age < x) = (x / 400d)^2.
    created = now - (WINDOW * np.sqrt(rng.random(n))).astype(np.int64) // US * US
    country = _pick(rng, COUNTRY_P, n)
    stage = _pick(rng, STAGE_P, n)
    plan = np.where(
        stage == STAGES.index("customer"),
        _pick(rng, (0.10, 0.05, 0.85), n),
        _pick(rng, (0.70, 0.22, 0.08), n),
    )
    owner = np.where(
        rng.random(n) < np.where(stage == STAGES.index("subscriber"), 0.6, 0.15),
        -1,
        rng.integers(0, len(OWNERS), n),
    )
    first, last = rng.integers(0, len(FIRST_NAMES), n), rng.integers(0, len(LAST_NAMES), n)
    company = rng.integers(0, len(COMPANIES), n)
    language = np.where(
        rng.random(n) < 0.1, 0, np.take(_index(LANGUAGES, COUNTRY_LANGUAGE), country)
    )
    trial_start = np.where(
        plan == PLANS.index("trial"),
        np.maximum(created, now - rng.integers(0, 45 * DAY, n)),
        created + (rng.random(n) * (now - created)).astype(np.int64),
    )
    age = np.clip(rng.normal(41, 11, n), 18, 80).astype(np.int64)
    frame = pl.DataFrame(
        {
            "contact_id": ids,
            "email": _emails(rng, ids, first, last, company),
            "first_name": _labels([f for f, _ in FIRST_NAMES], first),
            "last_name": _labels([s for s, _ in LAST_NAMES], last),
            "title": _labels(TITLES, _pick(rng, TITLE_P, n)),
            "company": _labels([c for c, _ in COMPANIES], company),
            "company_id": _account_ids(accounts, company),
            "state": _labels(US_STATES, _pick(rng, US_STATE_P, n)),
            "country": _labels(COUNTRIES, country),
            "lifecycle_stage": _labels(STAGES, stage),
            "owner": _labels(OWNERS, owner),
            "plan": _labels(PLANS, plan),
            "trial_started_at": _timestamps(trial_start),
            "age": pl.Series(age),
            "gender": _labels(GENDERS, _pick(rng, GENDER_P, n)),
            "language": _labels(LANGUAGES, language),
            "created_at": _timestamps(created)
            .dt.convert_time_zone(LOCAL_TZ)
            .dt.replace_time_zone(None),
        }
    ).with_columns(
        pl.when(pl.col("country") == "US").then(pl.col("state")).alias("state"),
        pl.when(pl.col("plan") != "free")
        .then(pl.col("trial_started_at"))
        .alias("trial_started_at"),
        pl.when(pl.Series(rng.random(n) >= 0.10)).then(pl.col("age")).alias("age"),
    )
    return frame, _behaviour(behaviour, created, stage, country, owner, now)


def _account_ids(rng: np.random.Generator, company: IntArray) -> pl.Series:
    """Each contact's account id (`ACC-CCAA`: company CC, account AA), null for ~20%."""
    n = len(company)
    frame = pl.DataFrame(
        {"c": company + 1, "a": _pick(rng, ACCOUNT_P, n) + 1, "known": rng.random(n)}
    )
    two = [pl.col(x).cast(pl.String).str.zfill(2) for x in ("c", "a")]
    ids = pl.format("ACC-{}{}", *two)
    known = pl.col("known") >= NO_ACCOUNT_SHARE
    return frame.select(pl.when(known).then(ids).alias("company_id")).to_series()


def _emails(
    rng: np.random.Generator, ids: IntArray, first: IntArray, last: IntArray, company: IntArray
) -> pl.Series:
    n = len(ids)
    domains = [d for _, d in COMPANIES] + list(FREE_MAIL)
    domain = np.where(
        rng.random(n) < 0.25, len(COMPANIES) + rng.integers(0, len(FREE_MAIL), n), company
    )
    frame = pl.DataFrame(
        {
            "first": _labels([a for _, a in FIRST_NAMES], first),
            "last": _labels([a for _, a in LAST_NAMES], last),
            "id": ids,
            "domain": _labels(domains, domain),
            "missing": rng.random(n) < 0.01,
        }
    )
    email = pl.concat_str("first", pl.lit("."), "last", "id", pl.lit("@"), "domain")
    return frame.select(pl.when(~pl.col("missing")).then(email).alias("email")).to_series()


def _behaviour(
    rng: np.random.Generator,
    created: IntArray,
    stage: IntArray,
    country: IntArray,
    owner: IntArray,
    now: int,
) -> _People:
    n = len(created)
    weight = rng.lognormal(0.0, 1.3, n)
    weight[rng.random(n) < SILENT_SHARE] = 0.0
    power_users = rng.choice(n, size=max(1, n // 2000), replace=False)
    weight[power_users] *= 25.0
    web_weight = weight**0.8 * rng.lognormal(0.0, 0.6, n)
    # About a third of the contacts lapsed: no opens or visits after some point in the past.
    lapsed = rng.random(n) < 0.35
    lapse = np.where(lapsed, rng.integers(14 * DAY, WINDOW, n), rng.integers(0, 14 * DAY, n))
    last_active = np.maximum(created + HOUR, now - lapse)
    flaky = rng.random(n) < 0.015
    return _People(
        created=created,
        last_active=last_active,
        stage=stage,
        country=country,
        owner=owner,
        email_weight=weight,
        web_weight=web_weight,
        open_p=rng.beta(2.0, 5.0, n),
        click_p=rng.beta(1.2, 6.0, n),
        bounce_p=np.where(flaky, 0.35, 0.01),
        hard_bounce=rng.random(n) < 0.003,
        unsubscribes=rng.random(n) < 0.008,
    )


# --- CRM and purchases ----------------------------------------------------------------------


def _crm_leads(rng: np.random.Generator, people: _People, now: int) -> pl.DataFrame:
    n = len(people.created)
    keep = np.flatnonzero(rng.random(n) < np.take(CRM_SHARE, people.stage))
    stage = people.stage[keep]
    owner = np.where(
        (people.owner[keep] >= 0) & (rng.random(len(keep)) < 0.9),
        people.owner[keep],
        rng.integers(0, len(OWNERS), len(keep)),
    )
    created = people.created[keep]
    updated = created + (rng.random(len(keep)) * (now - created)).astype(np.int64) // US * US
    status = _pick_by_row(rng, STATUS_BY_STAGE, stage)
    # Only leads someone works on or qualified have an opportunity.
    has_opportunity = np.isin(status, _index(LEAD_STATUSES, ("working", "qualified")))
    opportunity = np.where(has_opportunity, _pick_by_row(rng, OPP_BY_STAGE, stage), 0)
    return pl.DataFrame(
        {
            "contact_id": keep + 1,
            "lead_status": _labels(LEAD_STATUSES, status),
            "opportunity_stage": _labels(OPP_STAGES, opportunity),
            "crm_owner": _labels(OWNERS, owner),
            "updated_at": _timestamps(updated),
        }
    )


def _purchases(rng: np.random.Generator, people: _People, now: int) -> pl.DataFrame:
    n = len(people.created)
    buyers = np.flatnonzero(rng.random(n) < np.take(BUYER_SHARE, people.stage))
    buyer = np.repeat(buyers, rng.geometric(0.6, len(buyers)))
    rows = len(buyer)
    created = people.created[buyer]
    at = created + (rng.random(rows) * (now - created)).astype(np.int64) // US * US
    at = _add_future(rng, at, now)
    product = _pick(rng, PRODUCT_P, rows)
    amount = np.round(np.take(PRODUCT_PRICE, product) * rng.lognormal(0.0, 0.35, rows), 2)
    euro = np.isin(people.country[buyer], EURO_COUNTRIES)
    frame = pl.DataFrame(
        {
            "contact_id": buyer + 1,
            "purchased_at": _timestamps(at),
            "amount": amount,
            "currency": _labels(("USD", "EUR"), euro.astype(np.int64)),
            "product": _labels(PRODUCTS, product),
        }
    ).sort("purchased_at", maintain_order=True)
    order_number = pl.int_range(1, rows + 1).cast(pl.String).str.zfill(7)
    frame = frame.select(pl.format("SO-{}", order_number).alias("order_id"), pl.all())
    # A re-export appended some orders a second time.
    repeated = np.sort(rng.choice(rows, size=round(rows * DUPLICATE_SHARE), replace=False))
    return pl.concat([frame, frame[repeated]])


# --- events ---------------------------------------------------------------------------------


def _campaigns(rng: np.random.Generator, now: int) -> _Campaigns:
    """About two campaigns a week over the window, the last one a day before `now`."""
    days = rng.choice(np.arange(1, WINDOW // DAY), size=115, replace=False)
    midnight = now - now % DAY
    times = np.sort(midnight - days * DAY + rng.integers(7 * HOUR, 16 * HOUR, len(days)))
    years = pl.Series(times).cast(pl.Datetime("us", "UTC")).dt.year().to_numpy()
    numbers = np.ones(len(times), dtype=np.int64)
    for i in range(1, len(times)):
        numbers[i] = numbers[i - 1] + 1 if years[i] == years[i - 1] else 1
    labels = [f"cmp-{y}-{k:03d}" for y, k in zip(years, numbers, strict=True)]
    return _Campaigns(times=times, labels=pl.Series(labels, dtype=pl.String))


def _email_chunks(
    seed: int, people: _People, campaigns: _Campaigns, total: int, now: int
) -> list[tuple[int, Callable[[], pl.DataFrame]]]:
    """Chunks of the email table as (rows, make) pairs; each make() draws its own stream."""
    n_campaigns = len(campaigns.times)
    first = np.searchsorted(campaigns.times, people.created).astype(np.int64)
    before_lapse = np.searchsorted(campaigns.times, people.last_active, side="right")
    eligible = np.maximum(n_campaigns - first, 0)
    weight = np.where(eligible > 0, people.email_weight, 0.0)
    # Expected rows per send: sent + (delivered or bounce) + open + click.
    opens_share = np.clip(before_lapse - first, 0, None) / np.maximum(eligible, 1)
    per_send = 2.0 + (1.0 - people.bounce_p) * people.open_p * opens_share * (1.0 + people.click_p)
    mean_per_send = float(np.average(per_send, weights=weight)) if weight.sum() > 0 else 2.0
    sends = _spread(_rng(seed, _EMAIL), int(total / mean_per_send * 1.03) + 1, weight)
    expected = sends * per_send
    return [
        (
            rows,
            partial(
                _email_frame, seed, i, people, campaigns, first, lo, hi, sends[lo:hi], rows, now
            ),
        )
        for i, ((lo, hi), rows) in enumerate(_chunks(expected, total))
    ]


def _email_frame(
    seed: int,
    chunk: int,
    people: _People,
    campaigns: _Campaigns,
    first: IntArray,
    lo: int,
    hi: int,
    sends: IntArray,
    rows: int,
    now: int,
) -> pl.DataFrame:
    """One chunk of the email table: contacts lo..hi-1 get `sends`, trimmed to `rows` rows."""
    rng = _rng(seed, _EMAIL, chunk + 1)
    parts = [_email_rows(rng, people, campaigns, first, np.repeat(np.arange(lo, hi), sends))]
    have = len(parts[0][0])
    weight = people.email_weight[lo:hi] * (sends > 0)
    while have < rows and weight.sum() > 0:  # rare: the chunk came out short, send some more
        extra = _spread(rng, (rows - have) // 2 + 16, weight)
        parts.append(
            _email_rows(rng, people, campaigns, first, np.repeat(np.arange(lo, hi), extra))
        )
        have += len(parts[-1][0])
    who, at, kind, campaign, url = (np.concatenate(column) for column in zip(*parts, strict=True))
    keep = _trim(rng, len(who), rows)
    ids = _add_orphans(rng, who[keep] + 1, len(people.created))
    at = _add_future(rng, at[keep], now)
    order = _time_order(at)  # codes are sorted, not strings: much cheaper
    return pl.DataFrame(
        {
            "contact_id": ids[order],
            "occurred_at": _timestamps(at[order]),
            "event_type": _labels(EMAIL_TYPES, kind[keep][order]),
            "campaign_id": campaigns.labels.gather(campaign[keep][order]),
            "url": _labels(CLICK_URLS, url[keep][order]),
        }
    )


def _email_rows(
    rng: np.random.Generator,
    people: _People,
    campaigns: _Campaigns,
    first: IntArray,
    who: IntArray,
) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray]:
    """The funnel for one send per element of `who` (contact indexes, grouped by contact)."""
    n = len(who)
    n_campaigns = len(campaigns.times)
    start = first[who]
    campaign = np.minimum(start + (rng.random(n) * (n_campaigns - start)), n_campaigns - 1)
    campaign = campaign.astype(np.int64)
    sent = campaigns.times[campaign] + rng.integers(0, 2 * HOUR, n)
    last_send = np.ones(n, dtype=np.bool_)
    last_send[:-1] = who[1:] != who[:-1]
    hard = last_send & people.hard_bounce[who]
    bounced = hard | (rng.random(n) < people.bounce_p[who])
    delivered = ~bounced
    delivered_at = sent + rng.integers(US, 120 * US, n)
    opened = delivered & (sent <= people.last_active[who]) & (rng.random(n) < people.open_p[who])
    opened_at = delivered_at + rng.exponential(8 * HOUR, n).astype(np.int64)
    clicked = opened & (rng.random(n) < people.click_p[who])
    clicked_at = opened_at + 5 * US + rng.exponential(180 * US, n).astype(np.int64)
    unsubscribed = last_send & delivered & people.unsubscribes[who]
    unsubscribed_at = delivered_at + rng.exponential(HOUR, n).astype(np.int64)
    none = np.full(n, -1)
    url = none.copy()
    url[clicked] = _pick(rng, CLICK_URL_P, int(clicked.sum()))
    steps = (  # (which sends have this row, its time, its type, its url)
        (np.ones(n, dtype=np.bool_), sent, np.full(n, SENT), none),
        (bounced, sent + 60 * US, np.where(hard, HARD_BOUNCE, SOFT_BOUNCE), none),
        (delivered, delivered_at, np.full(n, DELIVERED), none),
        (opened, opened_at, np.full(n, OPEN), none),
        (clicked, clicked_at, np.full(n, CLICK), url),
        (unsubscribed, unsubscribed_at, np.full(n, UNSUBSCRIBE), none),
    )
    return (
        np.concatenate([who[mask] for mask, *_ in steps]),
        np.concatenate([at[mask] for mask, at, _, _ in steps]),
        np.concatenate([kind[mask] for mask, _, kind, _ in steps]),
        np.concatenate([campaign[mask] for mask, *_ in steps]),
        np.concatenate([link[mask] for mask, _, _, link in steps]),
    )


def _web_chunks(
    seed: int, people: _People, total: int, now: int
) -> list[tuple[int, Callable[[], pl.DataFrame]]]:
    """Chunks of the web table as (rows, make) pairs; each make() draws its own stream."""
    counts = _spread(_rng(seed, _WEB), total, people.web_weight)
    return [
        (rows, partial(_web_frame, seed, i, people, lo, counts[lo:hi], now))
        for i, ((lo, hi), rows) in enumerate(_chunks(counts.astype(np.float64), total))
    ]


def _web_frame(
    seed: int, chunk: int, people: _People, lo: int, counts: IntArray, now: int
) -> pl.DataFrame:
    """One chunk of the web table: `counts[k]` rows for contact index lo + k."""
    rng = _rng(seed, _WEB, chunk + 1)
    who = np.repeat(np.arange(lo, lo + len(counts)), counts)
    n = len(who)
    start, end = people.created[who], people.last_active[who]
    at = start + (rng.random(n) * (end - start)).astype(np.int64)
    kind = _pick(rng, WEB_TYPE_P, n)
    detail = np.zeros(n, dtype=np.int64)  # per type: the page, asset, form, term or event
    for k, p in enumerate(WEB_DETAIL_P):
        mask = kind == k
        detail[mask] = _pick(rng, p, int(mask.sum()))
    page = WEB_PAGE[kind, detail]
    asset = np.where(kind == DOWNLOAD, detail, -1)
    term = np.where(kind == SEARCH, detail, -1)
    custom = np.where(kind == CUSTOM, detail, -1)
    extra = _rng(seed, _SESSIONS, chunk + 1)
    _carts_and_purchases(extra, who, at, kind, page, (asset, term, custom))
    session = _sessions(who, at)
    ids = _add_orphans(rng, who + 1, len(people.created))
    at = _add_future(rng, at, now)
    order = _time_order(at)
    return pl.DataFrame(
        {
            "contact_id": ids[order],
            "occurred_at": _timestamps(at[order]),
            "event_type": _labels(WEB_LABELS, kind[order]),
            "page": _labels(PAGES, page[order]),
            "asset": _labels(ASSETS, asset[order]),
            "term": _labels(TERMS, term[order]),
            "event_name": _labels(CUSTOM_EVENTS, custom[order]),
            "session_id": session.gather(order),
        }
    )


def _carts_and_purchases(
    rng: np.random.Generator,
    who: IntArray,
    at: IntArray,
    kind: IntArray,
    page: IntArray,
    details: tuple[IntArray, IntArray, IntArray],
) -> None:
    """In place: custom add_to_cart rows become add_to_cart rows; for CART_BOUGHT_SHARE of
    them the contact's next row (by time) becomes a purchase on /checkout 2-25 minutes later
    (within one session)."""
    custom = details[2]
    cart = (kind == CUSTOM) & (custom == CUSTOM_EVENTS.index("add_to_cart"))
    kind[cart] = ADD_TO_CART
    custom[cart] = -1
    order = np.lexsort((at, who))  # each contact's rows in time order
    first, second = order[:-1], order[1:]
    pairs = (who[first] == who[second]) & cart[first] & ~cart[second]
    bought = pairs & (rng.random(len(first)) < CART_BOUGHT_SHARE)
    cart_rows, buy_rows = first[bought], second[bought]
    at[buy_rows] = at[cart_rows] + rng.integers(2 * 60 * US, 25 * 60 * US, len(buy_rows))
    kind[buy_rows] = PURCHASE
    page[buy_rows] = PAGES.index("/checkout")
    for column in details:
        column[buy_rows] = -1


def _sessions(who: IntArray, at: IntArray) -> pl.Series:
    """Per row `<contact_id>-<n>`: the contact's n-th session, a new one after a gap of more
    than SESSION_GAP between its rows."""
    order = np.lexsort((at, who))
    w, t = who[order], at[order]
    new = np.ones(len(order), dtype=np.bool_)
    new[1:] = (w[1:] != w[:-1]) | (t[1:] - t[:-1] > SESSION_GAP)
    number = np.cumsum(new)
    contact_start = np.ones(len(order), dtype=np.bool_)
    contact_start[1:] = w[1:] != w[:-1]
    base = np.maximum.accumulate(np.where(contact_start, number, 0))
    local = np.empty(len(order), dtype=np.int64)
    local[order] = number - base + 1
    frame = pl.DataFrame({"who": who + 1, "n": local})
    return frame.select(pl.format("{}-{}", "who", "n")).to_series()


# --- writing --------------------------------------------------------------------------------


def _write_table(frame: pl.DataFrame, stem: Path, fmt: str) -> Path:
    if fmt == "parquet":
        path = stem.with_suffix(".parquet")
        frame.write_parquet(path)
        return path
    path = stem.with_suffix(".csv")
    frame.with_columns(_csv_timestamps(frame)).write_csv(path, float_precision=2)
    return path


def _csv_timestamps(frame: pl.DataFrame) -> list[pl.Expr]:
    """Each timestamp column in one consistent ISO 8601 style, as real exports differ."""
    styles = {
        "created_at": ("%Y-%m-%dT%H:%M:%S", None),  # naive: the project's timezone
        "trial_started_at": ("%Y-%m-%dT%H:%M:%S%:z", None),  # +00:00
        "updated_at": ("%Y-%m-%dT%H:%M:%SZ", None),
        "purchased_at": ("%Y-%m-%dT%H:%M:%S%:z", LOCAL_TZ),  # the shop's local offsets
    }
    exprs = []
    for name, (pattern, zone) in styles.items():
        if name in frame.columns:
            column = pl.col(name)
            if zone is not None:
                column = column.dt.convert_time_zone(zone)
            exprs.append(column.dt.strftime(pattern))
    return exprs


def _write_events(
    stem: Path,
    chunks: Sequence[tuple[int, Callable[[], pl.DataFrame]]],
    total: int,
    report: Progress,
) -> Path:
    single = stem.with_suffix(".parquet")
    single.unlink(missing_ok=True)
    if stem.is_dir():  # stale parts of an earlier, larger run would match the glob
        for part in stem.glob("part-*.parquet"):
            part.unlink()
    if total <= SINGLE_FILE_MAX_ROWS:
        report(f"{stem.name}: {total:,} rows")
        frame = pl.concat([make() for _, make in chunks]).sort("occurred_at", maintain_order=True)
        frame.write_parquet(single)
        return single
    stem.mkdir(exist_ok=True)
    # Polars writes a part (off the GIL) while numpy draws the next; one part waits at most.
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future[None] | None = None
        for i, (rows, make) in enumerate(chunks):
            report(f"{stem.name}: part {i + 1}/{len(chunks)} ({rows:,} rows)")
            frame = make()
            if pending is not None:
                pending.result()
            pending = writer.submit(frame.write_parquet, stem / f"part-{i:03d}.parquet")
        if pending is not None:
            pending.result()
    return stem / "*.parquet"


# --- helpers --------------------------------------------------------------------------------


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _pick(rng: np.random.Generator, p: Sequence[float], n: int) -> IntArray:
    """n draws of an index into `p` (weights, normalised here)."""
    cdf = np.cumsum(p, dtype=np.float64)
    return np.searchsorted(cdf / cdf[-1], rng.random(n), side="right").astype(np.int64)


def _pick_by_row(
    rng: np.random.Generator, table: Sequence[Sequence[float]], row: IntArray
) -> IntArray:
    """One draw per element of `row`, from the distribution in that row of `table`."""
    cdf = np.cumsum(np.asarray(table, dtype=np.float64), axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(len(row))
    picks: IntArray = (u[:, None] >= cdf[row][:, :-1]).sum(axis=1).astype(np.int64)
    return picks


def _index(labels: Sequence[str | None], values: Sequence[str | None]) -> IntArray:
    return np.array([labels.index(v) for v in values], dtype=np.int64)


def _labels(labels: Sequence[str | None], codes: IntArray) -> pl.Series:
    """Strings by code; -1 is null (as is a None label)."""
    table = pl.Series([*labels, None], dtype=pl.String)
    return table.gather(np.where(codes < 0, len(labels), codes))


def _timestamps(micros: IntArray) -> pl.Series:
    return pl.Series(micros).cast(pl.Datetime("us", "UTC"))


def _time_order(at: IntArray) -> IntArray:
    """Indexes that sort `at` ascending, ties in input order (exports come in time order)."""
    frame = pl.DataFrame({"at": at})
    order = frame.select(pl.arg_sort_by("at", maintain_order=True)).to_series().to_numpy()
    return order.astype(np.int64, copy=False)


def _spread(rng: np.random.Generator, total: int, weight: FloatArray) -> IntArray:
    """Split `total` rows over contacts in proportion to `weight` (a multinomial draw)."""
    mass = weight.sum()
    if total == 0 or mass == 0:
        return np.zeros(len(weight), dtype=np.int64)
    return rng.multinomial(total, weight / mass).astype(np.int64)


def _chunks(expected: FloatArray, total: int) -> list[tuple[tuple[int, int], int]]:
    """Contact ranges of about CHUNK_ROWS expected rows each, with exact row targets summing
    to `total` (largest remainder)."""
    mass = float(expected.sum())
    n_chunks = max(1, -(-total // CHUNK_ROWS))
    if mass == 0:  # every contact is silent: nothing can be generated
        return [((0, len(expected)), total)]
    cumulative = np.cumsum(expected)
    cuts = np.searchsorted(cumulative, mass * np.arange(1, n_chunks) / n_chunks, side="right")
    bounds = np.unique(np.concatenate([[0], cuts, [len(expected)]]))
    ranges = [(int(lo), int(hi)) for lo, hi in pairwise(bounds)]
    share = np.array([expected[lo:hi].sum() for lo, hi in ranges]) / mass * total
    rows = np.floor(share).astype(np.int64)
    rows[np.argsort(rows - share)[: total - int(rows.sum())]] += 1
    return list(zip(ranges, (int(r) for r in rows), strict=True))


def _trim(rng: np.random.Generator, have: int, want: int) -> BoolArray:
    keep = np.ones(have, dtype=np.bool_)
    if have > want:
        keep[rng.choice(have, size=have - want, replace=False)] = False
    return keep


def _add_orphans(rng: np.random.Generator, ids: IntArray, n_contacts: int) -> IntArray:
    """~0.1% of rows (at least one) get a contact id that is not in contacts."""
    if len(ids) == 0:
        return ids
    rows = rng.choice(len(ids), size=max(1, round(len(ids) * ORPHAN_SHARE)), replace=False)
    ids = ids.copy()
    ids[rows] = n_contacts + rng.integers(1, 1000 + n_contacts // 10, len(rows))
    return ids


def _add_future(rng: np.random.Generator, at: IntArray, now: int) -> IntArray:
    """~0.2% of rows (at least one) move up to two weeks after `now`."""
    if len(at) == 0:
        return at
    rows = rng.choice(len(at), size=max(1, round(len(at) * FUTURE_SHARE)), replace=False)
    at = at.copy()
    at[rows] = now + rng.integers(60 * US, 14 * DAY, len(rows))
    return at


if __name__ == "__main__":
    write_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "sample_data"), progress=print)
