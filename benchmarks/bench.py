#!/usr/bin/env python3
"""segcli vs hand-written DuckDB SQL on the reference workload (SPEC §6).

    python benchmarks/bench.py --contacts 1000000 --email-events 30000000 \
        --web-events 20000000 --repeat 3 --workdir /tmp/segbench

1. generates the workload once with `segcli sample` (Parquet) into WORKDIR/data, reused when
   the parameters and segcli/sample.py are unchanged;
2. copies benchmarks/spec.yaml (21 segments, 2 scoring models) to WORKDIR/spec.yaml and
   writes the equivalent DuckDB SQL to WORKDIR/sql/: one single-pass query (one GROUP BY with
   FILTER aggregates per event table, joined to contacts) and one query per segment;
3. runs each variant in its own process, `--repeat` times, alternating: `segcli run` (fresh
   --out and --state per repeat), the DuckDB single pass, the DuckDB per-segment queries; each
   writes segment membership files and scores.parquet, so all three do comparable work;
4. measures wall time and peak RSS of each process (os.wait4's rusage of that child alone);
5. checks that all three agree (members of every segment, scores within 1e-6) and exits 1
   loudly when they do not;
6. prints medians and the ratios segcli/duckdb_single (contract: <= 1) and
   segcli/duckdb_per_segment (contract: <= 0.5), and writes WORKDIR/result.json.

Only the standard library is imported at module level: `python bench.py _run-sql FILE` is the
DuckDB worker process and should not pay for importing Polars. tests/test_bench_small.py runs
the same functions on a tiny workload as a correctness check.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC_FILE = HERE / "spec.yaml"
AS_OF = "2026-11-20T00:00:00+00:00"  # the sample data is anchored at 2026-11-20T00:00:00Z
TIMEZONE = "Europe/Berlin"  # spec.yaml's timezone (only active_days depends on it)
HALF_LIFE_S = 30 * 86400  # the recency model's decay half-life
SCORE_TOLERANCE = 1e-6
VARIANTS = ("segcli", "duckdb_single", "duckdb_per_segment")
MODELS = ("engagement", "recency")
SEGMENTS = (
    "hard_bounced",
    "soft_bounced_4_plus",
    "clicked_pricing_link_30d",
    "clicked_analytics_link",
    "clicked_automation_link_14d",
    "multi_campaign_clickers_90d",
    "engaged_clickers_90d",
    "openers_not_clickers_60d",
    "no_action_60d",
    "interacted_last_7d",
    "premium_support_interest",
    "analytics_interest_90d",
    "pricing_page_returners_30d",
    "abandoned_cart_14d",
    "feature_power_users_30d",
    "active_days_30d",
    "vps_in_nj_clicked_30d",
    "trial_inactive_30d",
    "outside_us_no_click_90d",
    "sales_ready",
    "recency_ready",
)


@dataclass(frozen=True)
class Workload:
    """The generator's parameters; the data is reused only when all of them match."""

    contacts: int
    email_events: int
    web_events: int
    seed: int = 42


@dataclass
class Measurement:
    """One measured process."""

    variant: str
    repeat: int
    wall_s: float
    peak_rss_mib: float
    user_s: float
    sys_s: float
    exit_code: int
    out: str
    log: str
    load_before: float  # 1-minute load average: other work on the machine skews wall times
    load_after: float


# ------------------------------------------------------------------------------- workload


def sample_py_digest() -> str:
    """sha256 of segcli/sample.py: a changed generator means different data."""
    found = importlib.util.find_spec("segcli.demo.sample")
    if found is None or found.origin is None:
        return "unknown"
    return hashlib.sha256(Path(found.origin).read_bytes()).hexdigest()


def segcli_command() -> list[str]:
    """The segcli console script beside this Python, else `python -m segcli`."""
    script = Path(sys.executable).parent / "segcli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "segcli"]


def prepare_workload(
    workdir: Path, workload: Workload, segcli: list[str] | None = None
) -> Measurement | None:
    """Generate WORKDIR/data (or reuse it); return the generation's measurement, None if reused.

    Event tables always end up as directories of parts (`email_events/*.parquet`), whatever
    size the generator chose to write as a single file, so spec.yaml and the SQL use one glob.
    """
    data = workdir / "data"
    params_file = data / "params.json"
    wanted = {**asdict(workload), "format": "parquet", "sample_py_sha256": sample_py_digest()}
    if params_file.exists() and json.loads(params_file.read_text()) == wanted:
        return None
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    cmd = [
        *(segcli or segcli_command()),
        "sample",
        "--out", str(data),
        "--contacts", str(workload.contacts),
        "--email-events", str(workload.email_events),
        "--web-events", str(workload.web_events),
        "--seed", str(workload.seed),
        "--format", "parquet",
    ]  # fmt: skip
    m = measure(cmd, "generate", 0, workdir, dict(os.environ), data, workdir / "generate.log")
    if m.exit_code != 0:
        fail(f"segcli sample failed (exit {m.exit_code}); see {m.log}:\n{tail(m.log)}")
    for table in ("email_events", "web_events"):
        single = data / f"{table}.parquet"
        if single.exists():
            (data / table).mkdir(exist_ok=True)
            single.rename(data / table / "part-000.parquet")
    params_file.write_text(json.dumps(wanted, indent=2) + "\n")
    return m


def write_spec(workdir: Path) -> Path:
    """WORKDIR/spec.yaml: benchmarks/spec.yaml (its paths are relative to WORKDIR)."""
    target = workdir / "spec.yaml"
    shutil.copyfile(SPEC_FILE, target)
    return target


# ------------------------------------------------------------------------------- SQL


def _ts(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.astimezone(UTC).isoformat(sep=' ')}'"


def sql_params(as_of: str = AS_OF) -> dict[str, str]:
    """Literals the SQL is written with: as_of, window starts (as_of - d), decay constants."""
    t = datetime.fromisoformat(as_of)
    out = {"ASOF": _ts(t), "HL": str(HALF_LIFE_S), "TZ": TIMEZONE}
    out["ASOF_US"] = str(int((t - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)))
    for d in (7, 14, 30, 60, 90):
        out[f"T{d}"] = _ts(t - timedelta(days=d))
    return out


# Rows after as_of are invisible to every condition (SPEC §2.2); undated rows stay visible.
VIEWS = """\
CREATE VIEW contacts AS SELECT * FROM read_parquet('data/contacts.parquet');
CREATE VIEW email AS SELECT * FROM read_parquet('data/email_events/*.parquet')
  WHERE occurred_at IS NULL OR occurred_at <= {ASOF};
CREATE VIEW web AS SELECT * FROM read_parquet('data/web_events/*.parquet')
  WHERE occurred_at IS NULL OR occurred_at <= {ASOF};
"""

# Decay weight of a row: 0.5^(age / half_life), age at as_of; an undated row counts fully.
WEIGHT = "coalesce(pow(0.5, ({ASOF_US} - epoch_us({col})) / 1e6 / {HL}), 1.0)"
WEB_ACTIONS = "('page_view', 'download', 'form_submit', 'search', 'custom')"

# DISTINCT_NOTE: DuckDB 2.0 evaluates a `count(DISTINCT x) FILTER (...)` inside the wide
# GROUP BY by hashing (group, x) over *all* rows before the filter: at 30M/20M rows the two
# distinct counts cost ~18 s of CPU, against ~3 s for everything else. A SQL writer who
# profiles computes them from pre-filtered rows (SELECT DISTINCT, then count), as below; the
# extra reads touch only recent row groups (the exports are time-ordered).
#
# One pass per event table (every other aggregate as a FILTER), one join to contacts.
SINGLE_PASS = """\
CREATE TEMP TABLE result AS
WITH e AS (
  SELECT contact_id,
    count(*) FILTER (WHERE event_type = 'hard_bounce') AS hard_bounces,
    count(*) FILTER (WHERE event_type = 'soft_bounce') AS soft_bounces,
    count(*) FILTER (WHERE event_type = 'click' AND contains(url, '/pricing')
                       AND occurred_at >= {T30}) AS pricing_clicks_30d,
    count(*) FILTER (WHERE event_type = 'click' AND contains(url, '/product/analytics'))
      AS analytics_clicks,
    count(*) FILTER (WHERE event_type = 'click' AND contains(url, '/product/analytics')
                       AND occurred_at >= {T90}) AS analytics_clicks_90d,
    count(*) FILTER (WHERE event_type = 'click' AND contains(url, '/product/automation')
                       AND occurred_at >= {T14}) AS automation_clicks_14d,
    count(*) FILTER (WHERE event_type = 'click'
                       AND regexp_matches(url, 'premium-support|/services/')) AS premium_clicks,
    count(*) FILTER (WHERE event_type = 'click' AND occurred_at >= {T7}) AS clicks_7d,
    count(*) FILTER (WHERE event_type = 'click' AND occurred_at >= {T30}) AS clicks_30d,
    count(*) FILTER (WHERE event_type = 'click' AND occurred_at >= {T60}) AS clicks_60d,
    count(*) FILTER (WHERE event_type = 'click' AND occurred_at >= {T90}) AS clicks_90d,
    count(*) FILTER (WHERE event_type = 'open' AND occurred_at >= {T60}) AS opens_60d,
    sum({click_weight}) FILTER (WHERE event_type = 'click' AND occurred_at >= {T90})
      AS click_weight_90d
  FROM email
  GROUP BY contact_id
), w AS (
  SELECT contact_id,
    count(*) FILTER (WHERE event_type = 'search' AND contains(lower(term), 'support'))
      AS support_searches,
    count(*) FILTER (WHERE event_type = 'page_view'
                       AND starts_with(page, '/services/premium-support')) AS premium_views,
    count(*) FILTER (WHERE event_type = 'download'
                       AND asset IN ('case-study-retail', 'webinar-recording'))
      AS interest_downloads,
    count(*) FILTER (WHERE event_type = 'search' AND term = 'analytics'
                       AND occurred_at >= {T90}) AS analytics_searches_90d,
    count(*) FILTER (WHERE event_type = 'page_view' AND page = '/product/analytics'
                       AND occurred_at >= {T90}) AS analytics_views_90d,
    count(*) FILTER (WHERE event_type = 'page_view' AND page = '/pricing'
                       AND occurred_at >= {T30}) AS pricing_views_30d,
    count(*) FILTER (WHERE event_type = 'page_view' AND page = '/pricing'
                       AND occurred_at >= {T90}) AS pricing_views_90d,
    count(*) FILTER (WHERE event_type = 'custom' AND event_name = 'add_to_cart'
                       AND occurred_at >= {T14}) AS cart_adds_14d,
    count(*) FILTER (WHERE event_type = 'custom' AND event_name = 'feature_used'
                       AND occurred_at >= {T30}) AS feature_uses_30d,
    count(*) FILTER (WHERE event_type = 'custom' AND event_name = 'trial_login'
                       AND occurred_at >= {T30}) AS trial_logins_30d,
    count(*) FILTER (WHERE event_type IN {WEB_ACTIONS} AND occurred_at >= {T7}) AS actions_7d,
    count(*) FILTER (WHERE event_type IN {WEB_ACTIONS} AND occurred_at >= {T60}) AS actions_60d,
    count(*) FILTER (WHERE event_type = 'form_submit' AND occurred_at >= {T60}) AS forms_60d,
    count(*) FILTER (WHERE event_type = 'download' AND asset = 'pricing-guide')
      AS pricing_guide_downloads,
    max(occurred_at) FILTER (WHERE event_type = 'download' AND asset = 'pricing-guide')
      AS last_pricing_guide_download,
    sum({web_weight}) FILTER (WHERE event_type IN ('page_view', 'download', 'search'))
      AS activity_weight
  FROM web
  GROUP BY contact_id
), e_campaigns AS (  -- distinct counts from pre-filtered rows: see DISTINCT_NOTE
  SELECT contact_id, count(*) AS campaigns_clicked_90d
  FROM (SELECT DISTINCT contact_id, campaign_id FROM email
        WHERE event_type = 'click' AND occurred_at >= {T90} AND campaign_id IS NOT NULL)
  GROUP BY contact_id
), w_days AS (
  SELECT contact_id, count(*) AS active_days_30d
  FROM (SELECT DISTINCT contact_id, CAST(timezone('{TZ}', occurred_at) AS DATE) FROM web
        WHERE occurred_at >= {T30})
  GROUP BY contact_id
), f AS (
  SELECT c.contact_id, c.title, c.state, c.country, c.plan, c.trial_started_at,
    coalesce(e.hard_bounces, 0) AS hard_bounces,
    coalesce(e.soft_bounces, 0) AS soft_bounces,
    coalesce(e.pricing_clicks_30d, 0) AS pricing_clicks_30d,
    coalesce(e.analytics_clicks, 0) AS analytics_clicks,
    coalesce(e.analytics_clicks_90d, 0) AS analytics_clicks_90d,
    coalesce(e.automation_clicks_14d, 0) AS automation_clicks_14d,
    coalesce(e.premium_clicks, 0) AS premium_clicks,
    coalesce(e.clicks_7d, 0) AS clicks_7d,
    coalesce(e.clicks_30d, 0) AS clicks_30d,
    coalesce(e.clicks_60d, 0) AS clicks_60d,
    coalesce(e.clicks_90d, 0) AS clicks_90d,
    coalesce(ec.campaigns_clicked_90d, 0) AS campaigns_clicked_90d,
    coalesce(e.opens_60d, 0) AS opens_60d,
    coalesce(e.click_weight_90d, 0) AS click_weight_90d,
    coalesce(w.support_searches, 0) AS support_searches,
    coalesce(w.premium_views, 0) AS premium_views,
    coalesce(w.interest_downloads, 0) AS interest_downloads,
    coalesce(w.analytics_searches_90d, 0) AS analytics_searches_90d,
    coalesce(w.analytics_views_90d, 0) AS analytics_views_90d,
    coalesce(w.pricing_views_30d, 0) AS pricing_views_30d,
    coalesce(w.pricing_views_90d, 0) AS pricing_views_90d,
    coalesce(w.cart_adds_14d, 0) AS cart_adds_14d,
    coalesce(w.feature_uses_30d, 0) AS feature_uses_30d,
    coalesce(w.trial_logins_30d, 0) AS trial_logins_30d,
    coalesce(wd.active_days_30d, 0) AS active_days_30d,
    coalesce(w.actions_7d, 0) AS web_actions_7d,
    coalesce(w.actions_60d, 0) AS web_actions_60d,
    coalesce(w.forms_60d, 0) AS forms_60d,
    coalesce(w.pricing_guide_downloads, 0) AS pricing_guide_downloads,
    w.last_pricing_guide_download,
    coalesce(w.activity_weight, 0) AS activity_weight,
    coalesce(starts_with(c.title, 'VP'), false) AS is_vp,
    coalesce(e.opens_60d, 0) + coalesce(e.clicks_60d, 0) + coalesce(w.actions_60d, 0) = 0
      AS inactive_60d
  FROM contacts c LEFT JOIN e USING (contact_id) LEFT JOIN w USING (contact_id)
    LEFT JOIN e_campaigns ec USING (contact_id) LEFT JOIN w_days wd USING (contact_id)
), s AS (
  SELECT *,
    CAST(greatest(0, least(150,
        least(10 * pricing_views_90d, 30)
      + least(5 * clicks_90d, 25)
      + CASE WHEN pricing_guide_downloads > 0 THEN 30 ELSE 0 END
      + CASE WHEN forms_60d > 0 THEN 15 ELSE 0 END
      + CASE WHEN is_vp THEN 20 ELSE 0 END
      - CASE WHEN inactive_60d THEN 20 ELSE 0 END)) AS DOUBLE) AS engagement,
    CAST(least(2 * activity_weight, 40)
      + least(3 * click_weight_90d, 15)
      + CASE WHEN pricing_guide_downloads > 0 THEN 15 * {last_download_weight} ELSE 0 END
      + CASE WHEN is_vp THEN 5 ELSE 0 END
      - CASE WHEN inactive_60d THEN 10 ELSE 0 END AS DOUBLE) AS recency
  FROM f
)
SELECT contact_id, engagement, recency,
  hard_bounces >= 1 AS hard_bounced,
  soft_bounces >= 4 AS soft_bounced_4_plus,
  pricing_clicks_30d >= 1 AS clicked_pricing_link_30d,
  analytics_clicks >= 1 AS clicked_analytics_link,
  automation_clicks_14d >= 1 AS clicked_automation_link_14d,
  campaigns_clicked_90d >= 2 AS multi_campaign_clickers_90d,
  clicks_90d >= 3 AND campaigns_clicked_90d >= 2 AS engaged_clickers_90d,
  opens_60d >= 1 AND clicks_60d = 0 AS openers_not_clickers_60d,
  inactive_60d AS no_action_60d,
  clicks_7d + web_actions_7d >= 1 AS interacted_last_7d,
  support_searches + premium_clicks + premium_views + interest_downloads >= 1
    AS premium_support_interest,
  analytics_searches_90d + analytics_views_90d + analytics_clicks_90d >= 1
    AS analytics_interest_90d,
  pricing_views_30d >= 3 AS pricing_page_returners_30d,
  cart_adds_14d >= 1 AS abandoned_cart_14d,
  feature_uses_30d >= 5 AS feature_power_users_30d,
  active_days_30d >= 5 AS active_days_30d,
  is_vp AND coalesce(state = 'NJ', false) AND clicks_30d >= 1 AS vps_in_nj_clicked_30d,
  coalesce(plan = 'trial' AND trial_started_at < {T14}, false) AND trial_logins_30d = 0
    AS trial_inactive_30d,
  country IS DISTINCT FROM 'US' AND clicks_90d = 0 AS outside_us_no_click_90d,
  engagement >= 100 AND hard_bounces = 0 AS sales_ready,
  recency >= 40 AS recency_ready
FROM s;
"""

# --- one query per segment: each reads what it needs, as one would write it by hand

ENGAGEMENT_QUERY = """\
SELECT c.contact_id,
  CAST(greatest(0, least(150,
      least(10 * coalesce(w.pricing_views_90d, 0), 30)
    + least(5 * coalesce(e.clicks_90d, 0), 25)
    + CASE WHEN w.pricing_guide_downloads > 0 THEN 30 ELSE 0 END
    + CASE WHEN w.forms_60d > 0 THEN 15 ELSE 0 END
    + CASE WHEN starts_with(c.title, 'VP') THEN 20 ELSE 0 END
    - CASE WHEN coalesce(e.actions_60d, 0) + coalesce(w.actions_60d, 0) = 0 THEN 20 ELSE 0 END
  )) AS DOUBLE) AS engagement
FROM contacts c
LEFT JOIN (
  SELECT contact_id,
    count(*) FILTER (WHERE event_type = 'click' AND occurred_at >= {T90}) AS clicks_90d,
    count(*) FILTER (WHERE occurred_at >= {T60}) AS actions_60d
  FROM email WHERE event_type IN ('open', 'click') AND occurred_at >= {T90}
  GROUP BY contact_id
) e USING (contact_id)
LEFT JOIN (
  SELECT contact_id,
    count(*) FILTER (WHERE event_type = 'page_view' AND page = '/pricing'
                       AND occurred_at >= {T90}) AS pricing_views_90d,
    count(*) FILTER (WHERE event_type = 'download' AND asset = 'pricing-guide')
      AS pricing_guide_downloads,
    count(*) FILTER (WHERE event_type = 'form_submit' AND occurred_at >= {T60}) AS forms_60d,
    count(*) FILTER (WHERE event_type IN {WEB_ACTIONS} AND occurred_at >= {T60}) AS actions_60d
  FROM web WHERE occurred_at >= {T90} OR (event_type = 'download' AND asset = 'pricing-guide')
  GROUP BY contact_id
) w USING (contact_id)"""

RECENCY_QUERY = """\
SELECT c.contact_id,
  CAST(least(2 * coalesce(w.activity_weight, 0), 40)
    + least(3 * coalesce(e.click_weight_90d, 0), 15)
    + CASE WHEN w.pricing_guide_downloads > 0 THEN 15 * {last_download_weight} ELSE 0 END
    + CASE WHEN starts_with(c.title, 'VP') THEN 5 ELSE 0 END
    - CASE WHEN coalesce(e.actions_60d, 0) + coalesce(w.actions_60d, 0) = 0 THEN 10 ELSE 0 END
  AS DOUBLE) AS recency
FROM contacts c
LEFT JOIN (
  SELECT contact_id,
    sum({click_weight}) FILTER (WHERE event_type = 'click' AND occurred_at >= {T90})
      AS click_weight_90d,
    count(*) FILTER (WHERE occurred_at >= {T60}) AS actions_60d
  FROM email WHERE event_type IN ('open', 'click') AND occurred_at >= {T90}
  GROUP BY contact_id
) e USING (contact_id)
LEFT JOIN (
  SELECT contact_id,
    sum({web_weight}) FILTER (WHERE event_type IN ('page_view', 'download', 'search'))
      AS activity_weight,
    count(*) FILTER (WHERE event_type = 'download' AND asset = 'pricing-guide')
      AS pricing_guide_downloads,
    max(occurred_at) FILTER (WHERE event_type = 'download' AND asset = 'pricing-guide')
      AS last_pricing_guide_download,
    count(*) FILTER (WHERE event_type IN {WEB_ACTIONS} AND occurred_at >= {T60}) AS actions_60d
  FROM web GROUP BY contact_id
) w USING (contact_id)"""


def _has(table: str, cond: str, at_least: int = 1) -> str:
    if at_least == 1:
        return f"contact_id IN (SELECT contact_id FROM {table} WHERE {cond})"
    return (
        f"contact_id IN (SELECT contact_id FROM {table} WHERE {cond}\n"
        f"  GROUP BY contact_id HAVING count(*) >= {at_least})"
    )


def _none(table: str, cond: str) -> str:
    return f"NOT EXISTS (SELECT 1 FROM {table} x WHERE x.contact_id = c.contact_id AND {cond})"


def _where(*conds: str) -> str:
    return "SELECT contact_id FROM contacts c WHERE " + "\n  AND ".join(conds)


PER_SEGMENT: dict[str, str] = {
    "hard_bounced": _where(_has("email", "event_type = 'hard_bounce'")),
    "soft_bounced_4_plus": _where(_has("email", "event_type = 'soft_bounce'", 4)),
    "clicked_pricing_link_30d": _where(
        _has("email", "event_type = 'click' AND contains(url, '/pricing') AND occurred_at >= {T30}")
    ),
    "clicked_analytics_link": _where(
        _has("email", "event_type = 'click' AND contains(url, '/product/analytics')")
    ),
    "clicked_automation_link_14d": _where(
        _has(
            "email",
            "event_type = 'click' AND contains(url, '/product/automation')"
            " AND occurred_at >= {T14}",
        )
    ),
    "multi_campaign_clickers_90d": _where(
        "contact_id IN (SELECT contact_id FROM email WHERE event_type = 'click'"
        " AND occurred_at >= {T90}\n  GROUP BY contact_id HAVING count(DISTINCT campaign_id) >= 2)"
    ),
    "engaged_clickers_90d": _where(
        "contact_id IN (SELECT contact_id FROM email WHERE event_type = 'click'"
        " AND occurred_at >= {T90}\n  GROUP BY contact_id"
        " HAVING count(*) >= 3 AND count(DISTINCT campaign_id) >= 2)"
    ),
    "openers_not_clickers_60d": _where(
        _has("email", "event_type = 'open' AND occurred_at >= {T60}"),
        _none("email", "x.event_type = 'click' AND x.occurred_at >= {T60}"),
    ),
    "no_action_60d": _where(
        _none("email", "x.event_type IN ('open', 'click') AND x.occurred_at >= {T60}"),
        _none("web", "x.event_type IN {WEB_ACTIONS} AND x.occurred_at >= {T60}"),
    ),
    "interacted_last_7d": _where(
        "contact_id IN (SELECT contact_id FROM email WHERE event_type = 'click'"
        " AND occurred_at >= {T7}\n  UNION ALL SELECT contact_id FROM web"
        " WHERE event_type IN {WEB_ACTIONS} AND occurred_at >= {T7})"
    ),
    "premium_support_interest": _where(
        "contact_id IN (SELECT contact_id FROM web WHERE"
        " (event_type = 'search' AND contains(lower(term), 'support'))"
        "\n    OR (event_type = 'page_view' AND starts_with(page, '/services/premium-support'))"
        "\n    OR (event_type = 'download' AND asset IN ('case-study-retail', 'webinar-recording'))"
        "\n  UNION ALL SELECT contact_id FROM email WHERE event_type = 'click'"
        " AND regexp_matches(url, 'premium-support|/services/'))"
    ),
    "analytics_interest_90d": _where(
        "contact_id IN (SELECT contact_id FROM web WHERE occurred_at >= {T90} AND"
        " ((event_type = 'search' AND term = 'analytics')"
        " OR (event_type = 'page_view' AND page = '/product/analytics'))"
        "\n  UNION ALL SELECT contact_id FROM email WHERE event_type = 'click'"
        " AND contains(url, '/product/analytics') AND occurred_at >= {T90})"
    ),
    "pricing_page_returners_30d": _where(
        _has("web", "event_type = 'page_view' AND page = '/pricing' AND occurred_at >= {T30}", 3)
    ),
    "abandoned_cart_14d": _where(
        _has("web", "event_type = 'custom' AND event_name = 'add_to_cart' AND occurred_at >= {T14}")
    ),
    "feature_power_users_30d": _where(
        _has(
            "web",
            "event_type = 'custom' AND event_name = 'feature_used' AND occurred_at >= {T30}",
            5,
        )
    ),
    "active_days_30d": _where(
        "contact_id IN (SELECT contact_id FROM web WHERE occurred_at >= {T30}\n  GROUP BY"
        " contact_id HAVING count(DISTINCT CAST(timezone('{TZ}', occurred_at) AS DATE)) >= 5)"
    ),
    "vps_in_nj_clicked_30d": _where(
        "starts_with(title, 'VP')",
        "state = 'NJ'",
        _has("email", "event_type = 'click' AND occurred_at >= {T30}"),
    ),
    "trial_inactive_30d": _where(
        "plan = 'trial'",
        "trial_started_at < {T14}",
        _none(
            "web",
            "x.event_type = 'custom' AND x.event_name = 'trial_login' AND x.occurred_at >= {T30}",
        ),
    ),
    "outside_us_no_click_90d": _where(
        "country IS DISTINCT FROM 'US'",
        _none("email", "x.event_type = 'click' AND x.occurred_at >= {T90}"),
    ),
    "sales_ready": "SELECT contact_id FROM ({ENGAGEMENT}) c WHERE engagement >= 100\n  AND "
    + _none("email", "x.event_type = 'hard_bounce'"),
    "recency_ready": "SELECT contact_id FROM ({RECENCY}) c WHERE recency >= 40",
}
assert tuple(PER_SEGMENT) == SEGMENTS


def _fill(template: str, params: dict[str, str]) -> str:
    """Substitute {NAME} placeholders (nested ones first); braces elsewhere are left alone."""
    nested = {
        "click_weight": WEIGHT.replace("{col}", "occurred_at"),
        "web_weight": WEIGHT.replace("{col}", "occurred_at"),
        "last_download_weight": WEIGHT.replace("{col}", "last_pricing_guide_download"),
        "ENGAGEMENT": ENGAGEMENT_QUERY,
        "RECENCY": RECENCY_QUERY,
        "WEB_ACTIONS": WEB_ACTIONS,
    }
    for _ in range(3):  # queries nest weights and lists
        for name, text in nested.items():
            template = template.replace("{" + name + "}", text)
    for name, value in params.items():
        template = template.replace("{" + name + "}", value)
    return template


def _copy(query: str, path: str) -> str:
    return f"COPY ({query}\n  ORDER BY contact_id) TO '{path}' (FORMAT parquet);\n"


def single_pass_sql(out: str, as_of: str = AS_OF) -> str:
    """The single-pass script: views, the one query into a temp table, then one file each."""
    parts = [VIEWS, SINGLE_PASS]
    parts += [_copy(f"SELECT contact_id FROM result WHERE {s}", f"{out}/segments/{s}.parquet")
              for s in SEGMENTS]  # fmt: skip
    parts.append(
        _copy("SELECT contact_id, engagement, recency FROM result", f"{out}/scores.parquet")
    )
    return _fill("\n".join(parts), sql_params(as_of))


def per_segment_sql(out: str, as_of: str = AS_OF) -> str:
    """The per-segment script: one COPY (query) per segment, one for both models' scores."""
    parts = [VIEWS]
    for name in SEGMENTS:
        parts.append(f"-- {name}\n" + _copy(PER_SEGMENT[name], f"{out}/segments/{name}.parquet"))
    scores = (
        "SELECT contact_id, engagement, recency\nFROM ({ENGAGEMENT}) eng\n"
        "JOIN ({RECENCY}) rec USING (contact_id)"
    )
    parts.append("-- scores\n" + _copy(scores, f"{out}/scores.parquet"))
    return _fill("\n".join(parts), sql_params(as_of))


def run_sql(path: Path, threads: int) -> None:
    """The DuckDB worker: run one script (cwd = WORKDIR) on an in-memory database."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(path.read_text())
    con.close()


# ------------------------------------------------------------------------------- running


def measure(
    cmd: list[str],
    variant: str,
    repeat: int,
    cwd: Path,
    env: dict[str, str],
    out: Path,
    log: Path,
) -> Measurement:
    """Run `cmd` and measure its wall time and peak RSS (the rusage of this child alone)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with log.open("wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped by wait4 already
    return Measurement(
        variant=variant,
        repeat=repeat,
        wall_s=wall,
        peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        exit_code=code,
        out=str(out),
        log=str(log),
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


def run_variant(
    variant: str,
    workdir: Path,
    repeat: int,
    threads: int,
    segcli: list[str] | None = None,
    as_of: str = AS_OF,
) -> Measurement:
    """One measured run of `variant` into WORKDIR/runs/VARIANT-REPEAT/out (fresh state)."""
    run_dir = workdir / "runs" / f"{variant}-{repeat}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    out = run_dir / "out"
    (out / "segments").mkdir(parents=True)
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads)}
    if variant == "segcli":
        cmd = [
            *(segcli or segcli_command()),
            "run",
            "-c", str(workdir / "spec.yaml"),
            "--as-of", as_of,
            "--out", str(out),
            "--state", str(run_dir / "state"),
        ]  # fmt: skip
    else:
        script = run_dir / "query.sql"
        make = single_pass_sql if variant == "duckdb_single" else per_segment_sql
        script.write_text(make(str(out.relative_to(workdir)), as_of))
        cmd = [sys.executable, str(Path(__file__).resolve()), "_run-sql", str(script), str(threads)]
    m = measure(cmd, variant, repeat, workdir, env, out, run_dir / "log.txt")
    if m.exit_code != 0:
        fail(f"{variant} (repeat {repeat}) failed with exit {m.exit_code}:\n{tail(m.log)}")
    return m


# ------------------------------------------------------------------------------- checking


@dataclass
class Results:
    """A variant's outputs: members per segment (sorted key arrays) and scores per model."""

    members: dict[str, Any]  # segment -> polars Series of keys
    scores: Any  # polars DataFrame: contact_id, engagement, recency


def read_results(out: Path) -> Results:
    """Read out/segments/*.parquet and out/scores.parquet (segcli's layout, SPEC §4)."""
    import polars as pl

    members = {}
    for name in SEGMENTS:
        path = out / "segments" / f"{name}.parquet"
        members[name] = pl.read_parquet(path, columns=["contact_id"])["contact_id"].sort()
    scores = pl.read_parquet(out / "scores.parquet", columns=["contact_id", *MODELS])
    return Results(members, scores.sort("contact_id"))


def compare(results: dict[str, Results]) -> list[str]:
    """Every disagreement between the first variant and each other one, in words."""
    import polars as pl

    problems: list[str] = []
    (base_name, base), *others = results.items()
    for name, other in others:
        for seg in SEGMENTS:
            a, b = base.members[seg], other.members[seg]
            only_a = a.filter(~a.is_in(b.implode()))
            only_b = b.filter(~b.is_in(a.implode()))
            if len(a) != len(b) or len(only_a) or len(only_b):
                problems.append(
                    f"segment {seg}: {base_name} {len(a):,} members, {name} {len(b):,}; "
                    f"only in {base_name}: {len(only_a):,} (e.g. {only_a.head(5).to_list()}), "
                    f"only in {name}: {len(only_b):,} (e.g. {only_b.head(5).to_list()})"
                )
        joined = base.scores.join(other.scores, on="contact_id", how="full", suffix="_o")
        if joined.height != base.scores.height or joined.height != other.scores.height:
            problems.append(
                f"scores: {base_name} has {base.scores.height:,} rows, {name} "
                f"{other.scores.height:,}, {joined.height:,} keys together"
            )
        for model in MODELS:
            diff = (pl.col(model) - pl.col(f"{model}_o")).abs()
            worst = joined.select(
                diff.max().alias("max"),
                (diff > SCORE_TOLERANCE).sum().alias("n"),
                pl.col(model).is_null().sum().alias("null_a"),
                pl.col(f"{model}_o").is_null().sum().alias("null_b"),
            ).row(0, named=True)
            if (worst["max"] or 0) > SCORE_TOLERANCE or worst["null_a"] or worst["null_b"]:
                example = joined.filter(diff > SCORE_TOLERANCE).head(5)
                problems.append(
                    f"score {model}: {base_name} vs {name}: max abs diff {worst['max']}, "
                    f"{worst['n']:,} contacts off by > {SCORE_TOLERANCE}, nulls "
                    f"{worst['null_a']}/{worst['null_b']}; e.g.\n{example}"
                )
    return problems


# ------------------------------------------------------------------------------- report


def summarize(ms: list[Measurement]) -> dict[str, dict[str, float]]:
    out = {}
    for v in VARIANTS:
        mine = [m for m in ms if m.variant == v]
        if mine:
            out[v] = {
                "median_wall_s": statistics.median(m.wall_s for m in mine),
                "min_wall_s": min(m.wall_s for m in mine),
                "max_wall_s": max(m.wall_s for m in mine),
                "median_peak_rss_mib": statistics.median(m.peak_rss_mib for m in mine),
                "max_peak_rss_mib": max(m.peak_rss_mib for m in mine),
                "median_cpu_s": statistics.median(m.user_s + m.sys_s for m in mine),
                "max_load": max(max(m.load_before, m.load_after) for m in mine),
            }
    return out


def print_table(summary: dict[str, dict[str, float]], sizes: dict[str, int]) -> dict[str, float]:
    print(
        f"\n{'variant':<20} {'median wall':>12} {'min':>8} {'max':>8} {'cpu':>8} {'peak RSS':>10}"
    )
    for v, s in summary.items():
        print(
            f"{v:<20} {s['median_wall_s']:>10.2f} s {s['min_wall_s']:>6.2f} s "
            f"{s['max_wall_s']:>6.2f} s {s['median_cpu_s']:>6.1f} s "
            f"{s['max_peak_rss_mib'] / 1024:>6.2f} GiB"
        )
    ratios = {}
    seg = summary.get("segcli")
    for v, limit in (("duckdb_single", 1.0), ("duckdb_per_segment", 0.5)):
        if seg and v in summary:
            r = seg["median_wall_s"] / summary[v]["median_wall_s"]
            best = seg["min_wall_s"] / summary[v]["min_wall_s"]
            cpu = seg["median_cpu_s"] / summary[v]["median_cpu_s"]
            ratios[f"segcli/{v}"] = r
            ratios[f"segcli/{v} (min wall)"] = best
            ratios[f"segcli/{v} (cpu)"] = cpu
            verdict = "ok" if r <= limit else "MISSES the contract"
            print(
                f"segcli/{v:<20} {r:5.2f}  (SPEC §6: <= {limit}; {verdict}); "
                f"min wall {best:.2f}, cpu time {cpu:.2f}"
            )
    load = max(s["max_load"] for s in summary.values())
    cores = os.cpu_count() or 1
    if load > cores:
        print(
            f"WARNING: load average reached {load:.1f} on {cores} cores during the runs: other "
            "work competed for the CPU, wall times and their ratios are unreliable (CPU times "
            "less so)"
        )
    if "segcli" in summary:
        rss = summary["segcli"]["max_peak_rss_mib"] / 1024
        print(
            f"segcli peak RSS      {rss:5.2f} GiB "
            f"(SPEC §6: < 2 GiB; {'ok' if rss < 2 else 'MISSES the contract'})"
        )
    if sizes:
        print("\nsegment sizes (segcli):")
        for name, n in sizes.items():
            print(f"  {name:<30} {n:>10,}")
    return ratios


def tail(path: str, lines: int = 30) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def fail(message: str, code: int = 2) -> None:
    print(f"\nERROR: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--email-events", type=int, default=30_000_000)
    p.add_argument("--web-events", type=int, default=20_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="POLARS_MAX_THREADS and DuckDB threads")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/segbench"))
    p.add_argument("--as-of", default=AS_OF)
    p.add_argument("--segcli", default=None, help="segcli command (default: the one beside python)")
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated subset of " + ", ".join(VARIANTS),
    )
    p.add_argument(
        "--result", type=Path, default=None, help="JSON result (default WORKDIR/result.json)"
    )
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := set(variants) - set(VARIANTS):
        p.error(f"unknown variants: {', '.join(sorted(unknown))}")
    segcli = args.segcli.split() if args.segcli else None
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    workload = Workload(args.contacts, args.email_events, args.web_events, args.seed)

    print(f"workload {workload} in {workdir}; threads={args.threads}; as_of={args.as_of}")
    gen = prepare_workload(workdir, workload, segcli)
    if gen is None:
        print("data: reused (same parameters and generator)")
    else:
        print(f"data: generated in {gen.wall_s:.1f} s (peak RSS {gen.peak_rss_mib / 1024:.2f} GiB)")
    write_spec(workdir)
    (workdir / "sql").mkdir(exist_ok=True)
    (workdir / "sql" / "single_pass.sql").write_text(single_pass_sql("out", args.as_of))
    (workdir / "sql" / "per_segment.sql").write_text(per_segment_sql("out", args.as_of))

    ms: list[Measurement] = []
    for i in range(1, args.repeat + 1):
        for v in variants:
            m = run_variant(v, workdir, i, args.threads, segcli, args.as_of)
            print(f"  repeat {i} {v:<20} {m.wall_s:7.2f} s  {m.peak_rss_mib / 1024:5.2f} GiB")
            ms.append(m)

    last = {v: next(m for m in reversed(ms) if m.variant == v) for v in variants}
    results = {v: read_results(Path(m.out)) for v, m in last.items()}
    problems = compare(results)
    if len(variants) > 2:  # the two SQL variants against each other too
        problems += compare({v: results[v] for v in variants[1:]})
    first = results[variants[0]]
    sizes = {s: len(first.members[s]) for s in SEGMENTS}
    summary = summarize(ms)
    ratios = print_table(summary, sizes)
    report = {
        "workload": asdict(workload),
        "threads": args.threads,
        "as_of": args.as_of,
        "generation": None if gen is None else asdict(gen),
        "runs": [asdict(m) for m in ms],
        "summary": summary,
        "ratios": ratios,
        "sizes": sizes,
        "disagreements": problems,
        "python": sys.version.split()[0],
    }
    result = args.result or workdir / "result.json"
    result.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresult: {result}")
    if problems:
        print("\n" + "!" * 78, file=sys.stderr)
        print(f"DISAGREEMENT between {', '.join(variants)}:", file=sys.stderr)
        for line in problems:
            print(f"  - {line}", file=sys.stderr)
        print("!" * 78, file=sys.stderr)
        return 1
    print(
        f"all {len(variants)} variants agree on {len(SEGMENTS)} segments and {len(MODELS)} models"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "_run-sql":
        run_sql(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(main())
