"""The hand-written DuckDB SQL the benchmark measures segcli against (twins of spec.yaml).

- `single_pass_sql`: one `GROUP BY contact_id` per event table with every aggregate as a
  `FILTER`, left-joined to contacts, all memberships and both scores in one `SELECT` into a
  temp table; then one `COPY` per segment file and one for the scores;
- `per_segment_sql`: one `COPY (query)` per segment, each reading what it needs, plus one
  query for both models' scores.

Both read the sources through views (`views`), so the same SQL runs on every shape: Parquet
through `read_parquet`, CSV through `read_csv` with the timestamp columns typed, as a careful
SQL writer would declare them. Only the standard library is imported at module level.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

AS_OF = "2026-11-20T00:00:00+00:00"  # the sample data is anchored at 2026-11-20T00:00:00Z
TIMEZONE = "Europe/Berlin"  # spec.yaml's timezone (only active_days depends on it)
HALF_LIFE_S = 30 * 86400  # the recency model's decay half-life

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
    "sent_not_opened_campaigns_90d",
    "pricing_then_form_7d",
    "weekly_regulars",
    "sales_ready",
    "recency_ready",
)


def _ts(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.astimezone(UTC).isoformat(sep=' ')}'"


def sql_params(as_of: str = AS_OF) -> dict[str, str]:
    """Literals the SQL is written with: as_of, window starts (as_of - d), decay constants."""
    t = datetime.fromisoformat(as_of)
    out = {"ASOF": _ts(t), "HL": str(HALF_LIFE_S), "TZ": TIMEZONE}
    out["ASOF_US"] = str(int((t - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)))
    for d in (7, 14, 28, 30, 60, 90):
        out[f"T{d}"] = _ts(t - timedelta(days=d))
    return out


# Rows after as_of are invisible to every condition (SPEC §2.2); undated rows stay visible.
VIEWS = """\
CREATE VIEW contacts AS SELECT * FROM {contacts};
CREATE VIEW email AS SELECT * FROM {email_events}
  WHERE occurred_at IS NULL OR occurred_at <= {ASOF};
CREATE VIEW web AS SELECT * FROM {web_events}
  WHERE occurred_at IS NULL OR occurred_at <= {ASOF};
"""
# CSV columns typed up front where the sniffer could guess otherwise (timestamps).
CSV_TYPES = {
    "contacts": "{'trial_started_at': 'TIMESTAMPTZ', 'created_at': 'TIMESTAMPTZ'}",
    "email_events": "{'occurred_at': 'TIMESTAMPTZ'}",
    "web_events": "{'occurred_at': 'TIMESTAMPTZ'}",
}


def views(paths: dict[str, str]) -> str:
    """The three views over the sources at `paths` (contacts, email_events, web_events)."""
    readers = {}
    for table, path in paths.items():
        if path.endswith(".parquet"):
            readers[table] = f"read_parquet('{path}')"
        else:
            readers[table] = f"read_csv('{path}', types = {CSV_TYPES[table]})"
    text = VIEWS
    for table, reader in readers.items():
        text = text.replace("{" + table + "}", reader)
    return text


# Decay weight of a row: 0.5^(age / half_life), age at as_of; an undated row counts fully.
WEIGHT = "coalesce(pow(0.5, ({ASOF_US} - epoch_us({col})) / 1e6 / {HL}), 1.0)"
WEB_ACTIONS = "('page_view', 'download', 'form_submit', 'search', 'custom')"

# Language v2 (SPEC §2.6), as a careful SQL writer would compute each for every contact.
# Per-value grouping: per (contact, campaign), sent and never opened in the window.
UNOPENED = """\
SELECT contact_id, count(*) AS campaigns_unopened_90d
FROM (SELECT contact_id, campaign_id FROM email
      WHERE occurred_at >= {T90} AND campaign_id IS NOT NULL
        AND event_type IN ('sent', 'open')
      GROUP BY contact_id, campaign_id
      HAVING bool_or(event_type = 'sent') AND NOT bool_or(event_type = 'open'))
GROUP BY contact_id"""
# A sequence: per form submit, the latest pricing view strictly before it (a window over
# both kinds of rows, forms first among equal times), at most 7 days before it.
PRICING_THEN_FORM = """\
SELECT DISTINCT contact_id
FROM (SELECT contact_id, occurred_at, is_form,
        max(CASE WHEN is_form THEN NULL ELSE occurred_at END) OVER (
          PARTITION BY contact_id ORDER BY occurred_at, is_form DESC
          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS last_view
      FROM (SELECT contact_id, occurred_at, event_type = 'form_submit' AS is_form FROM web
            WHERE occurred_at >= {T30} AND (event_type = 'form_submit'
              OR (event_type = 'page_view' AND page = '/pricing'))))
WHERE is_form AND last_view IS NOT NULL AND occurred_at - last_view <= INTERVAL 7 DAY"""
# A cadence: week i holds the rows i*7d <= as_of - t < (i+1)*7d; 2+ rows in 3 of 4 weeks.
WEEKLY_REGULARS = """\
SELECT contact_id
FROM (SELECT contact_id, ({ASOF_US} - epoch_us(occurred_at)) // 604800000000 AS week
      FROM web WHERE event_type = 'page_view' AND occurred_at > {T28}
      GROUP BY contact_id, week HAVING count(*) >= 2)
GROUP BY contact_id HAVING count(*) >= 3"""

# DISTINCT_NOTE: DuckDB 2.0 evaluates a `count(DISTINCT x) FILTER (...)` inside the wide
# GROUP BY by hashing (group, x) over *all* rows before the filter: at 30M/20M rows the two
# distinct counts cost ~18 s of CPU, against ~3 s for everything else. A SQL writer who
# profiles computes them from pre-filtered rows (SELECT DISTINCT, then count), as below (on
# time-sorted Parquet the extra reads touch only recent row groups).
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
    count(*) FILTER (WHERE event_type = 'add_to_cart'
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
), e_unopened AS ({UNOPENED}
), w_seq AS ({PRICING_THEN_FORM}
), w_regular AS ({WEEKLY_REGULARS}
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
    coalesce(eu.campaigns_unopened_90d, 0) AS campaigns_unopened_90d,
    ws.contact_id IS NOT NULL AS pricing_then_form_7d,
    wr.contact_id IS NOT NULL AS weekly_regulars,
    coalesce(starts_with(c.title, 'VP'), false) AS is_vp,
    coalesce(e.opens_60d, 0) + coalesce(e.clicks_60d, 0) + coalesce(w.actions_60d, 0) = 0
      AS inactive_60d
  FROM contacts c LEFT JOIN e USING (contact_id) LEFT JOIN w USING (contact_id)
    LEFT JOIN e_campaigns ec USING (contact_id) LEFT JOIN w_days wd USING (contact_id)
    LEFT JOIN e_unopened eu USING (contact_id) LEFT JOIN w_seq ws USING (contact_id)
    LEFT JOIN w_regular wr USING (contact_id)
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
  campaigns_unopened_90d >= 2 AS sent_not_opened_campaigns_90d,
  pricing_then_form_7d,
  weekly_regulars,
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
        _has("web", "event_type = 'add_to_cart' AND occurred_at >= {T14}")
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
    "sent_not_opened_campaigns_90d": _where(
        "contact_id IN (SELECT contact_id FROM ({UNOPENED}) WHERE campaigns_unopened_90d >= 2)"
    ),
    "pricing_then_form_7d": _where("contact_id IN ({PRICING_THEN_FORM})"),
    "weekly_regulars": _where("contact_id IN ({WEEKLY_REGULARS})"),
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
        "UNOPENED": UNOPENED,
        "PRICING_THEN_FORM": PRICING_THEN_FORM,
        "WEEKLY_REGULARS": WEEKLY_REGULARS,
    }
    for _ in range(3):  # queries nest weights and lists
        for name, text in nested.items():
            template = template.replace("{" + name + "}", text)
    for name, value in params.items():
        template = template.replace("{" + name + "}", value)
    return template


def _copy(query: str, path: str) -> str:
    return f"COPY ({query}\n  ORDER BY contact_id) TO '{path}' (FORMAT parquet);\n"


def single_pass_sql(out: str, paths: dict[str, str], as_of: str = AS_OF) -> str:
    """The single-pass script: views, the one query into a temp table, then one file each."""
    parts = [views(paths), SINGLE_PASS]
    parts += [_copy(f"SELECT contact_id FROM result WHERE {s}", f"{out}/segments/{s}.parquet")
              for s in SEGMENTS]  # fmt: skip
    parts.append(
        _copy("SELECT contact_id, engagement, recency FROM result", f"{out}/scores.parquet")
    )
    return _fill("\n".join(parts), sql_params(as_of))


def per_segment_sql(out: str, paths: dict[str, str], as_of: str = AS_OF) -> str:
    """The per-segment script: one COPY (query) per segment, one for both models' scores."""
    parts = [views(paths)]
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
