"""segcli check, report, init and schema: the CI-facing commands."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from segcli import api
from segcli.cli import app
from segcli.spec.schema import json_schema
from segcli.views import commands as views

ROOT = Path(__file__).resolve().parent.parent
ENV = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}

SPEC = """\
version: 1
sources:
  contacts: {path: contacts.csv, key: contact_id}
  email: {path: email.csv, key: contact_id, time: occurred_at, type: event_type}
  purchases: {path: purchases.csv, key: contact_id, time: purchased_at}
segments:
  clickers:
    where: {event: {source: email, type: click}}
    expect: {min_size: 1, max_size: 2, max_change: 50%}
  everyone:
    where: {all: []}
    expect: {max_change: 1}
checks:
  - {source: contacts, unique: contact_id}
  - {source: contacts, not_null: [email]}
  - {source: email, fresh: {within: 2d}}
  - {source: email, orphans: {max: 0}}
  - {source: purchases, accepted: {column: currency, in: [EUR, USD]}}
  - {source: email, rows: {min: 1, max: 100}}
"""


def make_project(tmp: Path, *, bad: bool) -> Path:
    """A tiny project; with bad=True the exports break four checks."""
    (tmp / "contacts.csv").write_text(
        "contact_id,email\n1,a@x.com\n2,b@x.com\n3," + ("" if bad else "c@x.com") + "\n"
    )
    rows = ["1,2026-11-19T10:00:00Z,click", "2,2026-11-19T11:00:00Z,open"]
    if bad:
        rows.append("9,2026-11-19T12:00:00Z,click")  # an orphan
    (tmp / "email.csv").write_text("contact_id,occurred_at,event_type\n" + "\n".join(rows) + "\n")
    cur = "GBP" if bad else "EUR"
    (tmp / "purchases.csv").write_text(
        f"contact_id,purchased_at,currency\n1,2026-11-01T10:00:00Z,{cur}\n2,2026-11-02T10:00:00Z,USD\n"
    )
    (tmp / "segments.yaml").write_text(SPEC)
    return tmp / "segments.yaml"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=ENV)
    return result.exit_code, result.output


def test_check_passes_on_good_exports(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=False)
    code, _ = invoke("run", "-c", str(spec), "--as-of", "2026-11-20")
    assert code == 0
    code, out = invoke("check", "-c", str(spec), "--as-of", "2026-11-20")
    assert code == 0, out
    assert "10 of 10 checks passed" in out


def test_check_failing_export_exit_1_junit_and_table(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=True)
    invoke("run", "-c", str(spec), "--as-of", "2026-11-20")
    junit = tmp_path / "junit.xml"
    code, out = invoke("check", "-c", str(spec), "--as-of", "2026-11-20", "--junit", str(junit))
    assert code == 1
    assert "FAIL" in out and "contacts: not_null email" in out
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {
        "contacts: not_null email",
        "email: orphans max 0",
        "purchases: accepted currency",
    }
    assert suite.get("tests") == "10" and suite.get("failures") == "3"
    orphan = next(c for c in suite.iter("testcase") if c.get("name") == "email: orphans max 0")
    failure = orphan.find("failure")
    assert failure is not None and "1 row(s)" in (failure.get("message") or "")
    assert "9" in (failure.text or "")


def test_check_json_lists_examples(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=True)
    invoke("run", "-c", str(spec), "--as-of", "2026-11-20")
    code, out = invoke("check", "-c", str(spec), "--as-of", "2026-11-20", "--json")
    assert code == 1
    data = json.loads(out)
    by = {o["name"]: o for o in data["outcomes"]}
    assert by["purchases: accepted currency"]["examples"] == ["'GBP' (1 rows)"]
    assert by["contacts: not_null email"]["examples"] == ["row 4"]
    assert data["failed"] == 3


def test_fresh_fails_when_data_is_stale(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=False)
    invoke("run", "-c", str(spec), "--as-of", "2026-11-20")
    res = views.check(api.load(spec), as_of="2026-11-25")
    fresh = next(o for o in res.outcomes if o.name.startswith("email: fresh"))
    assert not fresh.passed
    assert "2026-11-19T11:00:00" in fresh.detail


def test_expectations_against_the_last_runs(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=False)
    invoke("run", "-c", str(spec), "--as-of", "2026-11-20")
    # add two contacts: everyone grows 3 -> 5 (change 2 > max_change 1); clickers 1 -> 3
    (tmp_path / "contacts.csv").write_text(
        "contact_id,email\n1,a@x.com\n2,b@x.com\n3,c@x.com\n4,d@x.com\n5,e@x.com\n"
    )
    with (tmp_path / "email.csv").open("a") as fh:
        fh.write("4,2026-11-20T10:00:00Z,click\n5,2026-11-20T10:00:00Z,click\n")
    invoke("run", "-c", str(spec), "--as-of", "2026-11-21")
    res = views.check(api.load(spec), as_of="2026-11-21")
    by = {o.name: o for o in res.outcomes}
    assert not by["everyone: max_change 1"].passed
    assert by["everyone: max_change 1"].detail == "3 -> 5 (2 change)"
    assert not by["clickers: max_change 50%"].passed  # 1 -> 3 is +200%
    assert not by["clickers: max_size 2"].passed
    assert by["clickers: min_size 1"].passed


def test_check_without_runs_says_so(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=False)
    res = views.check(api.load(spec), as_of="2026-11-20")
    exp = [o for o in res.outcomes if o.kind == "expect"]
    assert exp and all(not o.passed and "run `segcli run` first" in o.detail for o in exp)


def test_bad_check_argument_is_a_spec_error(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=False)
    spec.write_text(SPEC.replace("fresh: {within: 2d}", "fresh: {within: soon}"))
    code, out = invoke("check", "-c", str(spec))
    assert code == 2
    assert "fresh takes {within: <duration>}" in out


def test_schema_accepts_demo_and_rejects_broken() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    demo = json.loads(json.dumps(yaml.safe_load((ROOT / "segments.yaml").read_text()), default=str))
    jsonschema.validate(demo, schema)
    broken = json.loads(json.dumps(demo))
    broken["segments"]["mql"]["kind"] = "dinamic"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(demo))
    broken["segments"]["mql"]["where"] = {"feild": "title", "eq": "x"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_schema_command_prints_the_schema() -> None:
    code, out = invoke("schema")
    assert code == 0
    assert json.loads(out) == json_schema()


def test_init_template_is_the_demo_spec() -> None:
    template = ROOT / "segcli" / "templates" / "segments.yaml"
    assert template.read_text() == (ROOT / "segments.yaml").read_text()


def test_init_then_run_in_an_empty_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "proj"
    code, out = invoke("init", str(target))
    assert code == 0, out
    assert "next steps" in out
    assert (target / ".gitignore").read_text().splitlines()[1:] == ["out/", ".segcli/"]
    monkeypatch.chdir(target)
    code, out = invoke("run", "--as-of", "2026-11-20")
    assert code == 0, out
    assert (target / "out" / "segments" / "mql.parquet").exists()
    code, out = invoke("init", str(target))
    assert code == 2 and "already exists" in out


def test_report_terminal_and_json_agree(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=False)
    invoke("run", "-c", str(spec), "--as-of", "2026-11-20")
    code, out = invoke("report", "-c", str(spec), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["sizes"] == {"clickers": 1, "everyone": 3}
    assert data["overlap"]["counts"] == [[1, 1], [1, 3]]
    assert data["overlap"]["jaccard"][0][1] == pytest.approx(1 / 3, abs=1e-4)
    code, text = invoke("report", "-c", str(spec))
    assert code == 0
    assert "clickers" in text and "0.333" in text


def test_report_without_run_is_a_state_error(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=False)
    code, out = invoke("report", "-c", str(spec))
    assert code == 4 and "no committed run in" in out and "run `segcli run` first" in out


def test_demo_report_html_is_self_contained(tmp_path: Path) -> None:
    proj = tmp_path / "demo"
    shutil.copytree(ROOT / "sample_data", proj / "sample_data")
    shutil.copy(ROOT / "segments.yaml", proj / "segments.yaml")
    spec = proj / "segments.yaml"
    assert invoke("run", "-c", str(spec), "--as-of", "2026-11-20")[0] == 0
    html = tmp_path / "r.html"
    code, _ = invoke("report", "-c", str(spec), "--html", str(html))
    assert code == 0
    page = html.read_text()
    for chart in ('id="sizes"', 'id="runs"', 'id="overlap"', 'id="hist-engagement"'):
        assert chart in page
    # One run is an initial load: said in words; no entered/left bars until a second run.
    assert 'id="changes"' not in page and 'id="initial-loads"' in page
    assert "No run after the first one yet" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "<script src" not in page


def test_dotted_segment_name_keeps_its_whole_name(tmp_path: Path) -> None:
    spec = make_project(tmp_path, bad=False)
    spec.write_text(SPEC.replace("  everyone:\n", "  everyone.v1.2:\n"))
    assert invoke("run", "-c", str(spec), "--as-of", "2026-11-20")[0] == 0
    assert (tmp_path / "out" / "segments" / "everyone.v1.2.parquet").exists()
    assert (tmp_path / "out" / "changes" / "everyone.v1.2.parquet").exists()
    code, out = invoke("report", "-c", str(spec), "--json")
    assert code == 0
    assert json.loads(out)["sizes"]["everyone.v1.2"] == 3
    result = CliRunner().invoke(
        app, ["show", "everyone.v1.2", "-c", str(spec), "--format", "csv"], env=ENV
    )
    assert result.exit_code == 0 and result.stdout.count("\n") == 4


@pytest.mark.parametrize(
    ("breakage", "code", "kind"),
    [("spec", 2, "spec"), ("data", 3, "data")],
)
def test_check_junit_is_written_when_nothing_can_be_checked(
    tmp_path: Path, breakage: str, code: int, kind: str
) -> None:
    """CI uploads the JUnit file `if: always()`: an invalid spec or unreadable data is one
    failed test case, not a missing file."""
    spec = make_project(tmp_path, bad=False)
    if breakage == "spec":
        spec.write_text(SPEC.replace("where: {all: []}", "where: {field: nmae, eq: x}"))
    else:
        (tmp_path / "email.csv").unlink()
    junit = tmp_path / "junit.xml"
    rc, _ = invoke("check", "-c", str(spec), "--junit", str(junit))
    assert rc == code
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("1", "1")
    (case,) = root.iter("testcase")
    assert case.get("name") == "segcli check could not run"
    assert case.get("classname") == f"segcli.{kind}"
    failure = case.find("failure")
    assert failure is not None and failure.text
    assert ("nmae" if breakage == "spec" else "email.csv") in failure.text
