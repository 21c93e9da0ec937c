"""Lead scoring (SPEC §2.4): rule points, `each`, caps, clamps, decay, rules_file, score
conditions, `top` by score, scores.parquet and `explain --contact`.

Every expected number is worked out by hand (or by the closed form of decay) in the test.
Time is fixed: as_of is 2026-03-31T00:00:00Z and the projects' timezone is UTC, so an event
"d days ago" is simply as_of - d days.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from segcli import api
from segcli.cli import app
from segcli.errors import Diagnostic, SpecError
from segcli.spec import model as m

AS_OF = datetime(2026, 3, 31, tzinfo=UTC)
AS_OF_TEXT = "2026-03-31T00:00:00Z"
FIXTURES = Path(__file__).parent / "scoring_fixtures"
TOL = 1e-9
ENV = {"COLUMNS": "100", "NO_COLOR": "1"}

HEADER = """\
version: 1
timezone: UTC
sources:
  contacts: {path: contacts.csv, key: contact_id}
  web: {path: web.csv, key: contact_id, time: occurred_at, type: event_type}
"""

Make = Callable[..., api.Project]

# A web event: (contact key, age in days at AS_OF, event type, asset)
Event = tuple[int, float, str, str]


def ago(days: float) -> str:
    """The ISO text of the instant `days` before AS_OF (negative: after it)."""
    return (AS_OF - timedelta(days=days)).isoformat()


def contacts_csv(keys: Iterable[int], **columns: dict[int, str]) -> str:
    """contacts.csv with `contact_id` and optional columns given as {key: value}."""
    names = list(columns)
    lines = [",".join(["contact_id", *names])]
    for k in keys:
        lines.append(",".join([str(k), *(columns[n].get(k, "") for n in names)]))
    return "\n".join(lines) + "\n"


def web_csv(events: Iterable[Event]) -> str:
    lines = ["contact_id,occurred_at,event_type,asset"]
    for key, age, typ, asset in events:
        lines.append(f"{key},{ago(age)},{typ},{asset}")
    return "\n".join(lines) + "\n"


def write_project(root: Path, spec: str, files: dict[str, str]) -> Path:
    """segments.yaml and data files under `root`; returns the spec's path."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "segments.yaml"
    cfg.write_text(spec, encoding="utf-8")
    for rel, text in files.items():
        (root / rel).write_text(text, encoding="utf-8")
    return cfg


@pytest.fixture
def make(tmp_path: Path) -> Make:
    """make(spec_text, {file: text}) -> a loaded project in a fresh directory."""
    counter = iter(range(1000))

    def build(spec: str, files: dict[str, str]) -> api.Project:
        return api.load(write_project(tmp_path / f"p{next(counter)}", spec, files))

    return build


def scores(project: api.Project, model: str = "m", as_of: datetime = AS_OF) -> dict[int, float]:
    ev, _ = api.compute(project, as_of)
    return dict(zip(ev.contact_keys().to_list(), ev.score(model).to_list(), strict=True))


def members(project: api.Project, as_of: datetime = AS_OF) -> dict[str, set[int]]:
    ev, _ = api.compute(project, as_of)
    keys = ev.contact_keys().to_list()
    return {
        n: {k for k, v in zip(keys, ev.member(n).to_list(), strict=True) if v} for n in ev.segments
    }


def assert_scores(got: dict[int, float], want: dict[int, float]) -> None:
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=TOL, rel=0), f"contact {k}: {got[k]} != {v}"


def spec_errors(make: Make, spec: str, files: dict[str, str]) -> list[Diagnostic]:
    with pytest.raises(SpecError) as info:
        make(spec, files)
    return info.value.diagnostics


def line_of(spec: str, needle: str) -> int:
    """The 1-based line of `spec` that holds `needle` (it must be on exactly one line)."""
    hits = [i for i, ln in enumerate(spec.splitlines(), start=1) if needle in ln]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def one_model(rules: str, *, extra: str = "", model: str = "") -> str:
    """HEADER plus `scoring: {m: ...}` with the given (indented) rules and model keys."""
    return f"{HEADER}{extra}scoring:\n  m:\n{model}    rules:\n{rules}"


# ---------------------------------------------------------------------------- points, ready


@pytest.mark.parametrize("sales_ready", [100, 80])
def test_ready_is_a_percent_of_sales_ready(make: Make, sales_ready: int) -> None:
    spec = one_model(
        """\
      - name: Pricing guide
        stage: consideration
        ready: 30%
        when: {event: {source: web, type: download}}
      - name: Webinar
        ready: 12.5%
        when: {event: {source: web, type: webinar}}
      - name: Any visit
        points: 7
        when: {event: {source: web, type: page_view}}
""",
        model=f"    sales_ready: {sales_ready}\n",
    )
    p = make(
        spec,
        {
            "contacts.csv": contacts_csv([1, 2, 3, 4]),
            "web.csv": web_csv(
                [
                    (1, 1, "download", "x"),
                    (2, 1, "download", "x"),
                    (2, 2, "webinar", ""),
                    (2, 3, "page_view", ""),
                    (3, 3, "page_view", ""),
                ]
            ),
        },
    )
    sm = p.spec.scoring["m"]
    assert sm.sales_ready == sales_ready
    assert [r.points for r in sm.rules] == pytest.approx(
        [0.30 * sales_ready, 0.125 * sales_ready, 7]
    )
    assert [r.stage for r in sm.rules] == ["consideration", None, None]
    got = scores(p)
    assert_scores(got, {1: 0.30 * sales_ready, 2: 0.425 * sales_ready + 7, 3: 7.0, 4: 0.0})
    ev, _ = api.compute(p, AS_OF)
    pct = api.scores_frame(p, ev)
    # readiness percent = score / sales_ready * 100: the ready rule alone is exactly 30%.
    assert pct.filter(pl.col("contact_id") == 1)["m_pct"][0] == pytest.approx(30.0, abs=TOL)


def test_sales_ready_defaults_to_100(make: Make) -> None:
    p = make(
        one_model("      - {name: r, ready: 30%, when: {event: {source: web}}}\n"),
        {"contacts.csv": contacts_csv([1]), "web.csv": web_csv([(1, 0, "x", "")])},
    )
    assert p.spec.scoring["m"].sales_ready == 100
    assert_scores(scores(p), {1: 30.0})


def test_bad_ready_in_yaml_is_a_spec_error(make: Make) -> None:
    spec = one_model("      - {name: r, ready: 30 percent, when: {event: {source: web}}}\n")
    diags = spec_errors(make, spec, {"contacts.csv": contacts_csv([1]), "web.csv": web_csv([])})
    assert [(d.code, d.line) for d in diags] == [("S006", line_of(spec, "30 percent"))]
    assert "ready must be a percent like 30%" in diags[0].message


# Expected scores of tests/scoring_fixtures/basic at AS_OF (see its data files):
#   engagement (sales_ready 80, clamp [0, 60])
#     1: fit 20 + pricing 4 visits x5 = 20 capped 15 + 2 clicks x3 + pricing-guide 30% = 24
#        = 65 -> clamped 60
#     2: 1 click 3 (45d ago, so not inactive) + case-study 10% = 8 (pricing visit 90d ago is
#        outside 30d) = 11
#     3: fit 20 ("Vice President") + roi-calculator 25% = 20 + pricing-guide 24 = 64 -> 60
#     4: no activity in 60 days -10 -> clamped 0
#     5: 1 pricing visit 5 + 1 click 3 (the open is no click; the download dated after
#        as_of is invisible) = 8
#   recency (sales_ready 50, half-life 30d)
#     1: web rows at ages 0, 1, 2, 3, 30 days x10 -> 43.6 capped 25; last download 30d ago
#        20 x 0.5 = 10; 4 page views >= 3: 5 (no decay) = 40
#     2: two rows 90d ago: 10 x (0.125 + 0.125) = 2.5; last download 20 x 0.125 = 2.5 = 5
#     3: rows at 0 and 30 days: 10 x 1.5 = 15; last download today 20 = 35
#     4: 0
#     5: one page view 7d ago: 10 x 0.5^(7/30); its download is in the future: 0
BASIC_ENGAGEMENT = {1: 60.0, 2: 11.0, 3: 60.0, 4: 0.0, 5: 8.0}
BASIC_RECENCY = {1: 40.0, 2: 5.0, 3: 35.0, 4: 0.0, 5: 10 * 0.5 ** (7 / 30)}


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    """A copy of the basic project (its state and outputs land in tmp_path)."""
    root = tmp_path / "basic"
    shutil.copytree(FIXTURES / "basic", root)
    return root / "segments.yaml"


def test_several_models_in_one_spec(basic: Path) -> None:
    p = api.load(basic)
    assert list(p.spec.scoring) == ["recency", "engagement"]
    eng = p.spec.scoring["engagement"]
    # rules first, then one rule per rules_file row (ready "30%", "10" and "25%" of 80)
    assert [(r.name, r.stage, r.points) for r in eng.rules[4:]] == [
        ("pricing-guide", "consideration", 24.0),
        ("case-study", "awareness", 8.0),
        ("roi-calculator", "decision", 20.0),
    ]
    assert [r.stage for r in eng.rules[:4]] == [None, "decision", "awareness", None]
    assert_scores(scores(p, "engagement"), BASIC_ENGAGEMENT)
    assert_scores(scores(p, "recency"), BASIC_RECENCY)


def test_score_segments_on_the_basic_project(basic: Path) -> None:
    got = members(api.load(basic))
    assert got["sales_ready"] == {1, 3}
    assert got["somewhat_ready"] == {1, 2, 3}  # gte 11 includes the contact at exactly 11
    assert got["top_two"] == {1, 3}


# ---------------------------------------------------------------------------- each, max


def test_each_rule_gives_points_per_matching_row(make: Make) -> None:
    p = make(
        one_model(
            "      - {name: clicks, points: 5, each: true,"
            " when: {event: {source: web, type: click}}}\n"
        ),
        {
            "contacts.csv": contacts_csv([1, 2, 3]),
            "web.csv": web_csv(
                [(1, d, "click", "") for d in (1, 2, 3, 40)]
                + [(2, 1, "click", ""), (2, 1, "open", ""), (3, 1, "open", "")]
            ),
        },
    )
    assert_scores(scores(p), {1: 20.0, 2: 5.0, 3: 0.0})


@pytest.mark.parametrize(("rows", "want"), [(2, 10.0), (3, 15.0), (4, 15.0)])
def test_each_rule_cap_at_the_edge(make: Make, rows: int, want: float) -> None:
    p = make(
        one_model(
            "      - {name: c, points: 5, each: true, max: 15,"
            " when: {event: {source: web, type: click}}}\n"
        ),
        {
            "contacts.csv": contacts_csv([1]),
            "web.csv": web_csv([(1, d, "click", "") for d in range(rows)]),
        },
    )
    assert_scores(scores(p), {1: want})


@pytest.mark.parametrize(("rows", "want"), [(1, -5.0), (2, -10.0), (3, -10.0)])
def test_negative_points_are_capped_at_minus_max(make: Make, rows: int, want: float) -> None:
    p = make(
        one_model(
            "      - {name: bounce, points: -5, each: true, max: 10,"
            " when: {event: {source: web, type: bounce}}}\n"
        ),
        {
            "contacts.csv": contacts_csv([1]),
            "web.csv": web_csv([(1, d, "bounce", "") for d in range(rows)]),
        },
    )
    assert_scores(scores(p), {1: want})


def test_rule_max_caps_a_plain_rule_too(make: Make) -> None:
    p = make(
        one_model("      - {name: big, points: 50, max: 20, when: {event: {source: web}}}\n"),
        {"contacts.csv": contacts_csv([1, 2]), "web.csv": web_csv([(1, 0, "x", "")])},
    )
    assert_scores(scores(p), {1: 20.0, 2: 0.0})


def test_model_min_max_clamp_both_edges(make: Make) -> None:
    tiers = {1: "t25", 2: "t20", 3: "t19", 4: "tm5", 5: "tm6"}
    rules = "".join(
        f"      - {{name: {t}, points: {pts}, when: {{field: tier, eq: {t}}}}}\n"
        for t, pts in (("t25", 25), ("t20", 20), ("t19", 19), ("tm5", -5), ("tm6", -6))
    )
    p = make(
        one_model(rules, model="    min: -5\n    max: 20\n"),
        {"contacts.csv": contacts_csv([1, 2, 3, 4, 5, 6], tier=tiers), "web.csv": web_csv([])},
    )
    assert_scores(scores(p), {1: 20.0, 2: 20.0, 3: 19.0, 4: -5.0, 5: -5.0, 6: 0.0})


# ---------------------------------------------------------------------------- decay


def decay_project(make: Make, rules: str, events: list[Event]) -> api.Project:
    keys = sorted({e[0] for e in events} | {100})
    return make(
        one_model(rules, model="    decay: {half_life: 30d}\n"),
        {
            "contacts.csv": contacts_csv(keys, tier={k: "gold" for k in keys}),
            "web.csv": web_csv(events),
        },
    )


def test_decay_each_rule_sums_half_life_weights(make: Make) -> None:
    p = decay_project(
        make,
        "      - {name: v, points: 10, each: true, when: {event: {source: web, type: visit}}}\n",
        [
            (1, 0, "visit", ""),
            (1, 30, "visit", ""),
            (1, 60, "visit", ""),
            (2, 7.5, "visit", ""),
            (2, 45, "visit", ""),
            (3, 30, "other", ""),
        ],
    )
    assert_scores(
        scores(p),
        {
            1: 10 * (1 + 0.5 + 0.25),
            2: 10 * (0.5 ** (7.5 / 30) + 0.5 ** (45 / 30)),
            3: 0.0,
            100: 0.0,
        },
    )


def test_decay_applies_before_the_rule_cap(make: Make) -> None:
    p = decay_project(
        make,
        "      - {name: v, points: 10, each: true, max: 25,"
        " when: {event: {source: web, type: visit}}}\n",
        [
            *[(1, 0, "visit", "")] * 3,
            (2, 0, "visit", ""),
            (2, 30, "visit", ""),
            (2, 60, "visit", ""),
        ],
    )
    assert_scores(scores(p), {1: 25.0, 2: 17.5, 100: 0.0})


def test_decay_single_event_rule_uses_the_most_recent_row(make: Make) -> None:
    p = decay_project(
        make,
        "      - {name: dl, points: 8, when: {event: {source: web, type: download}}}\n"
        "      - {name: dl1, points: 2, when: {event: {source: web, type: download,"
        " count: {gte: 1}}}}\n",
        [
            (1, 60, "download", ""),
            (1, 15, "download", ""),
            (2, 60, "download", ""),
            (3, 0, "download", ""),
            (3, 90, "download", ""),
        ],
    )
    # `count: {gte: 1}` written out is the default test: it decays as well.
    assert_scores(
        scores(p),
        {1: 10 * 0.5 ** (15 / 30), 2: 10 * 0.25, 3: 10.0, 100: 0.0},
    )


def test_decay_spares_non_default_tests_and_field_rules(make: Make) -> None:
    p = decay_project(
        make,
        "      - {name: twice, points: 4, when: {event: {source: web, type: download,"
        " count: {gte: 2}}}}\n"
        "      - {name: seen, points: 3, when: {event: {source: web, last: {within: 120d}}}}\n"
        "      - {name: fit, points: 1, when: {field: tier, eq: gold}}\n"
        "      - {name: both, points: 6, when: {all: [{event: {source: web, type: download}}]}}\n",
        [(1, 60, "download", ""), (1, 90, "download", ""), (2, 90, "download", "")],
    )
    # Contact 1: 4 + 3 + 1 + 6 with no decay although its rows are 60 and 90 days old.
    assert_scores(scores(p), {1: 14.0, 2: 10.0, 100: 1.0})


def test_decay_needs_the_source_time_column(make: Make) -> None:
    spec = (
        "version: 1\nsources:\n  contacts: {path: contacts.csv, key: contact_id}\n"
        "  tags: {path: tags.csv, key: contact_id}\n"
        "scoring:\n  m:\n    decay: {half_life: 30d}\n    rules:\n"
        "      - {name: tagged, points: 5, each: true, when: {event: {source: tags}}}\n"
        "      - {name: many tags, points: 1, when: {event: {source: tags, count: {gte: 2}}}}\n"
    )
    diags = spec_errors(
        make, spec, {"contacts.csv": contacts_csv([1]), "tags.csv": "contact_id,tag\n1,a\n"}
    )
    # Only the rule that would decay is reported (count >= 2 never decays).
    assert [(d.code, d.line) for d in diags] == [("S013", 7)]
    assert "rule 'tagged' reads source 'tags'" in diags[0].message
    assert "time" in (diags[0].help or "")


# ---------------------------------------------------------------------------- visibility


def test_rows_after_as_of_and_orphans_do_not_score(make: Make) -> None:
    p = make(
        one_model(
            "      - {name: each, points: 1, each: true, when: {event: {source: web}}}\n"
            "      - {name: any, points: 10, when: {event: {source: web, type: late}}}\n"
        ),
        {
            "contacts.csv": contacts_csv([1, 2]),
            "web.csv": web_csv(
                [
                    (1, 0, "x", ""),  # exactly at as_of: visible
                    (1, -1 / 86400, "x", ""),  # one second after as_of: not yet
                    (1, -3, "late", ""),
                    (2, -0.5, "late", ""),
                    (99, 1, "x", ""),  # no such contact
                    (99, 1, "late", ""),
                ]
            ),
        },
    )
    assert_scores(scores(p), {1: 1.0, 2: 0.0})
    # The same data evaluated after those rows happened does count them.
    assert_scores(scores(p, as_of=AS_OF + timedelta(days=3)), {1: 13.0, 2: 11.0})


# ---------------------------------------------------------------------------- rules_file


RULES_FILE_MODEL = """\
    sales_ready: 80
    rules_file:
      path: assets.csv
      when: {event: {source: web, type: download, where: {asset: {eq: "{asset}"}}}}
"""


def test_rules_file_expands_one_rule_per_row(make: Make) -> None:
    spec = f"{HEADER}scoring:\n  m:\n{RULES_FILE_MODEL}"
    assets = (
        "asset,stage,ready,points\n"
        "pricing-guide,consideration,30,\n"
        "case-study,,30%,\n"
        "webinar,awareness,,7\n"
    )
    p = make(
        spec,
        {
            "contacts.csv": contacts_csv([1, 2, 3]),
            "assets.csv": assets,
            "web.csv": web_csv(
                [
                    (1, 1, "download", "pricing-guide"),
                    (1, 2, "download", "webinar"),
                    (2, 1, "download", "case-study"),
                    (2, 2, "download", "case-study"),
                    (3, 1, "download", "other"),
                    (3, 1, "page_view", "pricing-guide"),
                ]
            ),
        },
    )
    rules = p.spec.scoring["m"].rules
    assert [(r.name, r.stage, r.points, r.each) for r in rules] == [
        ("pricing-guide", "consideration", 24.0, False),
        ("case-study", None, 24.0, False),
        ("webinar", "awareness", 7.0, False),
    ]
    for r in rules:
        assert isinstance(r.when, m.EventCond)
        assert r.when.types == ("download",)
        assert [(w.column, w.test.ops) for w in r.when.where] == [("asset", (m.Op("eq", r.name),))]
    assert_scores(scores(p), {1: 31.0, 2: 24.0, 3: 0.0})


def test_rules_file_each_and_max_apply_to_every_row(make: Make) -> None:
    spec = (
        f"{HEADER}scoring:\n  m:\n    rules_file:\n      path: assets.csv\n      each: true\n"
        "      max: 10\n"
        '      when: {event: {source: web, type: download, where: {asset: {eq: "{asset}"}}}}\n'
    )
    p = make(
        spec,
        {
            "contacts.csv": contacts_csv([1, 2]),
            "assets.csv": "asset,points\na,4\nb,3\n",
            "web.csv": web_csv(
                [(1, d, "download", "a") for d in (1, 2, 3)]
                + [(1, 1, "download", "b"), (2, 1, "download", "b"), (2, 2, "download", "b")]
            ),
        },
    )
    assert [(r.each, r.max) for r in p.spec.scoring["m"].rules] == [(True, 10.0), (True, 10.0)]
    assert_scores(scores(p), {1: 10.0 + 3.0, 2: 6.0})


@pytest.mark.parametrize(
    ("column", "bad"), [("ready", "thirty"), ("ready", "%"), ("points", "lots")]
)
def test_rules_file_bad_value_names_the_csv_file_and_row(
    tmp_path: Path, column: str, bad: str
) -> None:
    spec = f"{HEADER}scoring:\n  m:\n{RULES_FILE_MODEL}"
    assets = f"asset,stage,{column}\npricing-guide,consideration,30\ncase-study,awareness,{bad}\n"
    cfg = write_project(
        tmp_path / "p",
        spec,
        {"contacts.csv": contacts_csv([1]), "web.csv": web_csv([]), "assets.csv": assets},
    )
    with pytest.raises(SpecError) as info:
        api.load(cfg)
    (d,) = info.value.diagnostics
    assert d.code == "S006"
    assert Path(d.file).name == "assets.csv"
    assert d.line == 3  # the header is line 1
    assert f"assets.csv:3: bad ready/points value '{bad}' for 'case-study'" in d.message
    res = CliRunner().invoke(app, ["validate", "-c", str(cfg)], env=ENV)
    assert res.exit_code == 2
    assert "assets.csv:3:1: S006 assets.csv:3: bad ready/points value" in res.stderr
    assert repr(bad) in res.stderr
    assert "ready is a percent (30 or 30%), points a number" in res.stderr


def test_rules_file_each_needs_the_default_test(make: Make) -> None:
    spec = (
        f"{HEADER}scoring:\n  m:\n    rules_file:\n      path: assets.csv\n      each: true\n"
        "      when: {event: {source: web, where: {asset: {eq: '{asset}'}}, count: {gte: 2}}}\n"
    )
    files = {
        "contacts.csv": contacts_csv([1]),
        "web.csv": web_csv([]),
        "assets.csv": "asset,points\na,1\nb,2\nc,3\n",
    }
    diags = spec_errors(make, spec, files)
    # One problem of the template, reported once (not once per CSV row).
    assert [(d.code, d.line) for d in diags] == [("S015", line_of(spec, "each: true"))]
    assert "each: true needs `when` to be one event condition" in diags[0].message


def test_rules_file_template_errors_are_reported_once(make: Make) -> None:
    spec = (
        f"{HEADER}scoring:\n  m:\n    rules_file:\n      path: assets.csv\n      each: maybe\n"
        "      when: {event: {source: wbe, where: {asset: {eq: '{asset}'}}}}\n"
    )
    files = {
        "contacts.csv": contacts_csv([1]),
        "web.csv": web_csv([]),
        "assets.csv": "asset,points\na,1\nb,2\nc,3\n",
    }
    diags = spec_errors(make, spec, files)
    assert [(d.code, d.line) for d in diags] == [
        ("S004", line_of(spec, "each: maybe")),
        ("S008", line_of(spec, "source: wbe")),
    ]
    assert diags[1].help == "did you mean 'web'?"


# ---------------------------------------------------------------------------- score conditions

CHANGE_SPEC = (
    HEADER
    + """\
segments:
  at_least_11: {where: {score: {model: m, gte: 11}}}
  rising: {where: {score_change: {model: m, over: 30d, gt: 0}}}
  falling: {where: {score_change: {model: m, over: 30d, lt: 0}}}
  steady: {where: {score_change: {model: m, over: 30d, eq: 0}}}
  halved: {where: {score_change: {model: d, over: 30d, eq: -5}}}
  top_half_by_change:
    where: {score: {model: m, gte: 0}}
    top: {percent: 50, by: {score_change: {model: m, over: 30d}}}
  top_half_of_everyone:
    where: {all: []}
    top: {percent: 50, by: {score_change: {model: m, over: 30d}}}
scoring:
  m:
    rules:
      - {name: Recent visit, points: 10, when: {event: {source: web, type: visit, within: 7d}}}
      - {name: Downloads, points: 4, each: true, when: {event: {source: web, type: download}}}
      - {name: Gold, points: 1, when: {field: tier, eq: gold}}
  d:
    decay: {half_life: 30d}
    rules:
      - {name: Decayed visits, points: 10, each: true, when: {event: {source: web, type: old}}}
"""
)
# At AS_OF (7d window: [-7d, 0]) and 30 days earlier (window [-37d, -30d], rows after -30d
# invisible):
#   1: visit 33d ago                    now 0,  then 10 -> -10
#   2: visit 2d ago                     now 10, then 0  -> +10
#   3: visits 2d and 33d ago, gold      now 11, then 11 ->   0
#   4: downloads 40d, 20d, 5d ago       now 12, then 4  ->  +8
#   5: gold, no rows                    now 1,  then 1  ->   0
#   6: visit exactly 30d ago            now 0,  then 10 -> -10 (at the earlier as_of itself)
#   7: visit 38d ago                    now 0,  then 0  ->   0 (outside both windows)
#   model d: contact 1 has an `old` row 30d ago: now 10 x 0.5, then 10 x 1 -> -5;
#            contact 2 one 60d ago: now 2.5, then 5 -> -2.5
CHANGE_NOW = {1: 0.0, 2: 10.0, 3: 11.0, 4: 12.0, 5: 1.0, 6: 0.0, 7: 0.0}
CHANGE_THEN = {1: 10.0, 2: 0.0, 3: 11.0, 4: 4.0, 5: 1.0, 6: 10.0, 7: 0.0}


@pytest.fixture
def change_project(make: Make) -> api.Project:
    return make(
        CHANGE_SPEC,
        {
            "contacts.csv": contacts_csv(range(1, 8), tier={3: "gold", 5: "gold"}),
            "web.csv": web_csv(
                [
                    (1, 33, "visit", ""),
                    (2, 2, "visit", ""),
                    (3, 2, "visit", ""),
                    (3, 33, "visit", ""),
                    (4, 40, "download", ""),
                    (4, 20, "download", ""),
                    (4, 5, "download", ""),
                    (6, 30, "visit", ""),
                    (7, 38, "visit", ""),
                    (1, 30, "old", ""),
                    (2, 60, "old", ""),
                ]
            ),
        },
    )


def test_windows_shift_with_time_travel(change_project: api.Project) -> None:
    then = AS_OF - timedelta(days=30)
    assert_scores(scores(change_project), CHANGE_NOW)
    assert_scores(scores(change_project, as_of=then), CHANGE_THEN)
    assert_scores(scores(change_project, "d"), {1: 5.0, 2: 2.5, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0})
    assert_scores(
        scores(change_project, "d", as_of=then), {1: 10.0, 2: 5.0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0}
    )


def test_score_change_is_now_minus_a_separate_run_at_as_of_minus_over(
    change_project: api.Project,
) -> None:
    then = AS_OF - timedelta(days=30)
    now_scores = scores(change_project)
    then_scores = scores(change_project, as_of=then)
    change = {k: now_scores[k] - then_scores[k] for k in now_scores}
    got = members(change_project)
    assert got["rising"] == {k for k, v in change.items() if v > 0} == {2, 4}
    assert got["falling"] == {k for k, v in change.items() if v < 0} == {1, 6}
    assert got["steady"] == {k for k, v in change.items() if v == 0} == {3, 5, 7}
    assert got["halved"] == {1}
    assert got["at_least_11"] == {3, 4}
    # The earlier score the run computed for score_change is the separate run's score.
    ev, _ = api.compute(change_project, AS_OF)
    earlier = ev.score("m", at=then).to_list()
    assert earlier == pytest.approx([then_scores[k] for k in ev.contact_keys()], abs=TOL)


def test_top_percent_by_score_change_breaks_ties_by_key(change_project: api.Project) -> None:
    # 7 matches -> 50% is 4 (rounded up): +10 (2), +8 (4), then three tied at 0: 3 and 5 by key.
    assert members(change_project)["top_half_by_change"] == {2, 4, 3, 5}


def test_top_percent_of_everyone(change_project: api.Project) -> None:
    # `where: {all: []}` is a constant: 50% must still be of all 7 contacts (once it was of 1).
    assert members(change_project)["top_half_of_everyone"] == {2, 4, 3, 5}


def test_top_n_by_score_breaks_ties_by_key_ascending(make: Make) -> None:
    spec = one_model(
        "      - {name: hi, points: 20, when: {field: tier, eq: hi}}\n"
        "      - {name: lo, points: 5, when: {field: tier, eq: lo}}\n",
        extra=(
            "segments:\n"
            "  top2:\n    where: {all: []}\n    top: {n: 2, by: {score: m}}\n"
            "  top1_lo:\n    where: {score: {model: m, lt: 20}}\n    top: {n: 1, by: {score: m}}\n"
        ),
    )
    # File order is not key order, and numeric key order is not text order (4 < 10 < 30).
    tiers = {30: "hi", 2: "lo", 10: "hi", 4: "hi", 7: "lo"}
    p = make(
        spec, {"contacts.csv": contacts_csv([30, 2, 10, 4, 7], tier=tiers), "web.csv": web_csv([])}
    )
    got = members(p)
    assert got["top2"] == {4, 10}
    assert got["top1_lo"] == {2}


# ---------------------------------------------------------------------------- outputs


def test_scores_parquet_columns_order_and_values(basic: Path, tmp_path: Path) -> None:
    p = api.load(basic)
    api.run(p, as_of=AS_OF_TEXT, out_dir=tmp_path / "out", state_dir=tmp_path / "state")
    df = pl.read_parquet(tmp_path / "out" / "scores.parquet")
    assert df.columns == ["contact_id", "recency", "recency_pct", "engagement", "engagement_pct"]
    assert df["contact_id"].to_list() == [1, 2, 3, 4, 5]
    assert all(df[c].dtype == pl.Float64 for c in df.columns[1:])
    assert_scores(dict(zip(df["contact_id"], df["engagement"], strict=True)), BASIC_ENGAGEMENT)
    assert_scores(dict(zip(df["contact_id"], df["recency"], strict=True)), BASIC_RECENCY)
    pct = {
        "engagement_pct": {k: v / 80 * 100 for k, v in BASIC_ENGAGEMENT.items()},
        "recency_pct": {k: v / 50 * 100 for k, v in BASIC_RECENCY.items()},
    }
    for col, want in pct.items():
        assert_scores(dict(zip(df["contact_id"], df[col], strict=True)), want)
    assert df["engagement_pct"].to_list()[:3] == pytest.approx([75.0, 13.75, 75.0], abs=TOL)


def test_scores_csv_has_the_same_columns(basic: Path, tmp_path: Path) -> None:
    p = api.load(basic)
    api.run(p, as_of=AS_OF_TEXT, out_dir=tmp_path / "o", state_dir=tmp_path / "s", fmt="csv")
    df = pl.read_csv(tmp_path / "o" / "scores.csv")
    assert df.columns == ["contact_id", "recency", "recency_pct", "engagement", "engagement_pct"]
    assert df["engagement"].to_list() == pytest.approx([60.0, 11.0, 60.0, 0.0, 8.0], abs=TOL)


def _explain(cfg: Path, key: int) -> list[str]:
    res = CliRunner().invoke(
        app, ["explain", "--contact", str(key), "-c", str(cfg), "--as-of", AS_OF_TEXT], env=ENV
    )
    assert res.exit_code == 0, res.output
    return res.stdout.splitlines()


def _rule_line(lines: list[str], points: str, name: str) -> str:
    pat = re.compile(rf"^\s+{re.escape(points)}\s+{re.escape(name)}(\s|$)")
    hits = [ln for ln in lines if pat.match(ln)]
    assert len(hits) == 1, f"no line '{points} {name}' in:\n" + "\n".join(lines)
    return hits[0]


def test_explain_contact_shows_points_rule_by_rule(basic: Path) -> None:
    lines = _explain(basic, 1)
    assert lines[0] == "contact contact_id=1 as of 2026-03-31T00:00:00+00:00"
    assert "score recency: 40 (80% of sales-ready 50)" in lines
    assert "score engagement: 60 (75% of sales-ready 80)" in lines
    # Each rule's own points (capped, decayed), in spec order, rules_file rows last.
    expected = [
        ("+25.00", "Web activity"),
        ("+10.00", "Last download"),
        ("+5.00", "Three page views"),
        ("+20.00", "Fit - VP title"),
        ("+15.00", "Visited pricing [decision]"),
        ("+6.00", "Clicked an email [awareness]"),
        ("+0.00", "No activity in 60 days"),
        ("+24.00", "pricing-guide [consideration]"),
        ("+0.00", "case-study [awareness]"),
        ("+0.00", "roi-calculator [decision]"),
    ]
    positions = [lines.index(_rule_line(lines, pts, name)) for pts, name in expected]
    assert positions == sorted(positions)
    assert "decayed, half-life 30d" in _rule_line(lines, "+25.00", "Web activity")
    assert "max 15" in _rule_line(lines, "+15.00", "Visited pricing [decision]")
    assert "  total clamped to min 0, max 60" in lines


def test_explain_contact_negative_and_decayed_points(basic: Path) -> None:
    lines = _explain(basic, 4)
    _rule_line(lines, "-10.00", "No activity in 60 days")
    assert "score engagement: 0 (0% of sales-ready 80)" in lines
    lines = _explain(basic, 5)
    _rule_line(lines, f"{10 * 0.5 ** (7 / 30):+.2f}", "Web activity")
    _rule_line(lines, "+0.00", "Last download")  # its only download is after as_of
    assert "score engagement: 8 (10% of sales-ready 80)" in lines


# ---------------------------------------------------------------------------- spec errors


@pytest.mark.parametrize(
    "segment",
    [
        "{where: {score: {model: engagment, gte: 1}}}",
        "{where: {score_change: {model: engagment, over: 30d, gt: 0}}}",
        "{where: {all: []}, top: {n: 1, by: {score: engagment}}}",
        "{where: {all: []}, top: {n: 1, by: {score_change: {model: engagment, over: 7d}}}}",
    ],
)
def test_unknown_model_is_s014_with_a_hint(tmp_path: Path, segment: str) -> None:
    spec = (
        f"{HEADER}segments:\n  s: {segment}\nscoring:\n  engagement:\n    rules:\n"
        "      - {name: r, points: 1, when: {event: {source: web}}}\n"
    )
    cfg = write_project(
        tmp_path / "p", spec, {"contacts.csv": contacts_csv([1]), "web.csv": web_csv([])}
    )
    with pytest.raises(SpecError) as info:
        api.load(cfg)
    (d,) = info.value.diagnostics
    assert (d.code, d.line) == ("S014", line_of(spec, "engagment"))
    assert "unknown scoring model 'engagment'" in d.message
    assert d.help == "did you mean 'engagement'?"
    res = CliRunner().invoke(app, ["validate", "-c", str(cfg)], env=ENV)
    assert res.exit_code == 2
    assert "S014 unknown scoring model 'engagment'" in res.stderr
    assert "did you mean 'engagement'?" in res.stderr


@pytest.mark.parametrize(
    "when",
    [
        "{field: tier, eq: gold}",
        "{event: {source: web, count: {gte: 2}}}",
        "{all: [{event: {source: web}}]}",
        "{not: {event: {source: web}}}",
    ],
)
def test_each_on_a_non_event_rule_is_a_spec_error(make: Make, when: str) -> None:
    spec = one_model(f"      - {{name: r, points: 1, each: true, when: {when}}}\n")
    diags = spec_errors(
        make, spec, {"contacts.csv": contacts_csv([1], tier={1: "gold"}), "web.csv": web_csv([])}
    )
    assert [(d.code, d.line) for d in diags] == [("S015", line_of(spec, "each: true"))]
    assert "each: true needs `when` to be one event condition with the default test" in (
        diags[0].message
    )


@pytest.mark.parametrize(
    ("model_keys", "rule_keys", "needle", "message"),
    [
        ("    sales_ready: 0\n", "", "sales_ready: 0", "sales_ready must be greater than 0, got 0"),
        ("    sales_ready: -50\n", "", "sales_ready: -50", "sales_ready must be greater than 0"),
        (
            "    min: 10\n    max: 5\n",
            "",
            "min: 10",
            "the model's min (10) is greater than its max",
        ),
        ("", " max: -5,", "max: -5", "a rule's max must be >= 0, got -5"),
    ],
)
def test_bad_model_and_cap_values_are_spec_errors(
    make: Make, model_keys: str, rule_keys: str, needle: str, message: str
) -> None:
    spec = one_model(
        f"      - {{name: r, points: 10,{rule_keys} when: {{event: {{source: web}}}}}}\n",
        model=model_keys,
    )
    diags = spec_errors(make, spec, {"contacts.csv": contacts_csv([1]), "web.csv": web_csv([])})
    assert [(d.code, d.line) for d in diags] == [("S006", line_of(spec, needle))]
    assert message in diags[0].message


def test_each_with_the_default_test_written_out_is_allowed(make: Make) -> None:
    p = make(
        one_model(
            "      - {name: r, points: 2, each: true,"
            " when: {event: {source: web, count: {gte: 1}}}}\n"
        ),
        {"contacts.csv": contacts_csv([1]), "web.csv": web_csv([(1, 1, "a", ""), (1, 2, "b", "")])},
    )
    assert_scores(scores(p), {1: 4.0})


@pytest.mark.parametrize(
    ("when", "kind"),
    [
        ("{segment: s}", "segment"),
        ("{any: [{score: {model: m, gte: 5}}]}", "score"),
        ("{not: {score_change: {model: m, over: 7d, gt: 0}}}", "score_change"),
    ],
)
def test_rule_when_cannot_use_segments_or_scores(make: Make, when: str, kind: str) -> None:
    spec = one_model(
        f"      - {{name: r, points: 1, when: {when}}}\n",
        extra="segments:\n  s: {where: {field: tier, eq: gold}}\n",
    )
    files = {"contacts.csv": contacts_csv([1], tier={1: "gold"}), "web.csv": web_csv([])}
    diags = spec_errors(make, spec, files)
    assert [(d.code, d.line) for d in diags] == [("S015", line_of(spec, "name: r"))]
    assert diags[0].message == f"a scoring rule's `when` cannot use `{kind}:`"
