"""The command line through typer's CliRunner: exit codes, exact output, files written.

segcli's own text (diagnostics, explain, tables) is compared with golden files in
tests/golden/. After a deliberate change of wording, rewrite them with
`UPDATE_GOLDEN=1 pytest tests/test_cli.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import typer.main
from typer.testing import CliRunner, Result

from segcli import __version__, api
from segcli.cli import app

TESTS = Path(__file__).parent
PROJECTS = TESTS / "projects"
GOLDEN = TESTS / "golden"
ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
AS_OF = "2026-11-20"  # midnight in Europe/Berlin, the basic project's timezone
AS_OF_UTC = "2026-11-19T23:00:00+00:00"

# The basic project's expected members at AS_OF (see tests/projects/basic/*.csv).
MEMBERS = {
    "europe": [101, 103],
    "vps": [101, 103],
    "pricing_clickers": [101, 103],
    "engaged_europe": [101],
    "mqls": [101],
    "quiet": [102, 104, 105],
    "hot": [101, 103],
}

runner = CliRunner(env=ENV)


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def assert_golden(name: str, text: str) -> None:
    """Compare `text` with tests/golden/NAME.txt (UPDATE_GOLDEN=1 rewrites the file)."""
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; create it with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def basic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of tests/projects/basic, and the working directory set to it."""
    root = tmp_path / "basic"
    shutil.copytree(PROJECTS / "basic", root)
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the basic project after one `segcli run` (shared, read-only)."""
    root = tmp_path_factory.mktemp("ran") / "basic"
    shutil.copytree(PROJECTS / "basic", root)
    result = invoke("run", "-c", str(root / "segments.yaml"), "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def errors_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """tests/projects/errors as the working directory (only read: validate writes nothing)."""
    monkeypatch.chdir(PROJECTS / "errors")
    return PROJECTS / "errors"


# ---------------------------------------------------------------- spec errors (exit 2)

SPEC_CASES = {
    "unknown_top_key": ["S003"],
    "unknown_keys": ["S003", "S003"],
    "wrong_types": ["S004", "S004", "S004"],
    "unknown_operator": ["S007", "S007"],
    "bad_values": ["S006", "S006", "S006", "S006"],
    "unknown_names": ["S008", "S009", "S010", "S014"],
    "literal_types": ["S012", "S012"],
    "undeclared_columns": ["S013", "S013"],
    "cycle": ["S011"],
    "empty": ["S002"],
    "top_list": ["S002"],
    "invalid_yaml": ["S001"],
    "duplicate_key": ["S003"],
    "from_file_dynamic": ["S015"],
    "four_mistakes": ["S009", "S006", "S006", "S010"],
}


@pytest.mark.parametrize("case", SPEC_CASES)
def test_spec_error_text(errors_dir: Path, case: str) -> None:
    result = invoke("validate", "-c", f"{case}.yaml")
    assert result.exit_code == 2
    assert result.stdout == ""
    no_traceback(result)
    assert_golden(f"validate_{case}", result.stderr)


@pytest.mark.parametrize("case", SPEC_CASES)
def test_spec_error_anatomy(errors_dir: Path, case: str) -> None:
    """Each diagnostic: file:line:col CODE message, the line with carets, and a help line."""
    stderr = invoke("validate", "-c", f"{case}.yaml").stderr
    blocks = stderr.split("\n\n")
    n = len(SPEC_CASES[case])
    assert blocks[-1] == f"Found {n} error{'s' if n > 1 else ''}.\n"
    header = re.compile(rf"^{case}\.yaml:(\d+):(\d+): (S\d\d\d) \S.*$")
    codes = []
    for block in blocks[:-1]:
        lines = block.splitlines()
        m = header.match(lines[0])
        assert m, lines[0]
        codes.append(m.group(3))
        line, col = int(m.group(1)), int(m.group(2))
        if len(lines) > 2 and lines[2].startswith(f"{line} | "):
            caret = lines[3]
            assert caret.strip(" |").startswith("^")
            assert caret.index("^") - caret.index("|") - 1 == col
        assert lines[-1].startswith("  = help: ")
    assert codes == SPEC_CASES[case]


@pytest.mark.parametrize("case", SPEC_CASES)
def test_spec_errors_as_json(errors_dir: Path, case: str) -> None:
    result = invoke("validate", "-c", f"{case}.yaml", "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["exit_code"] == 2
    diags = data["diagnostics"]
    assert [d["code"] for d in diags] == SPEC_CASES[case]
    for d in diags:
        assert set(d) == {"code", "message", "file", "line", "col", "path", "help"}
        assert d["file"] == f"{case}.yaml"
        assert d["line"] >= 1 and d["col"] >= 1 and d["message"] and d["help"]


def test_four_mistakes_are_four_diagnostics(errors_dir: Path) -> None:
    result = invoke("validate", "-c", "four_mistakes.yaml")
    headers = [ln for ln in result.stderr.splitlines() if ln.startswith("four_mistakes.yaml:")]
    assert [h.split(": ")[1].split()[0] for h in headers] == ["S009", "S006", "S006", "S010"]
    assert result.stderr.endswith("Found 4 errors.\n")


def test_every_command_reading_the_spec_reports_its_errors(errors_dir: Path) -> None:
    expected = (GOLDEN / "validate_four_mistakes.txt").read_text(encoding="utf-8")
    for args in (
        ("run", "--dry-run", "--as-of", AS_OF),
        ("show", "germany"),
        ("explain", "germany", "--as-of", AS_OF),
    ):
        result = invoke(*args, "-c", "four_mistakes.yaml")
        assert (result.exit_code, result.stderr) == (2, expected), args


def test_missing_spec_file_is_a_usage_error(errors_dir: Path) -> None:
    result = invoke("validate", "-c", "nope.yaml")
    assert result.exit_code == 2
    assert result.stderr == "error: spec file not found: nope.yaml\n"


def test_default_config_is_segments_yaml_in_the_working_directory(basic: Path) -> None:
    result = invoke("validate")
    assert result.exit_code == 0
    assert result.stdout == "segments.yaml: ok — 3 sources, 7 segments, 1 scoring model\n"


def test_validate_ok(errors_dir: Path) -> None:
    result = invoke("validate", "-c", "valid.yaml")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "valid.yaml: ok — 2 sources, 2 segments, 0 scoring models\n"


def test_validate_ok_json(errors_dir: Path) -> None:
    result = invoke("validate", "-c", "valid.yaml", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "ok": True,
        "file": "valid.yaml",
        "sources": 2,
        "segments": 2,
        "models": 0,
    }


# ---------------------------------------------------------------- data errors (exit 3)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_missing_source_file(basic: Path) -> None:
    _edit(basic / "segments.yaml", "path: crm.csv", "path: exports/crm.csv")
    result = invoke("validate")
    assert result.exit_code == 3
    assert result.stderr == "error: source 'crm': file not found: exports/crm.csv\n"
    no_traceback(result)


def test_every_missing_source_file_is_named(basic: Path) -> None:
    _edit(basic / "segments.yaml", "path: crm.csv", "path: exports/crm.csv")
    _edit(basic / "segments.yaml", "path: email.csv", "path: exports/email-*.csv")
    result = invoke("validate")
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: source 'email': no file matches exports/email-*.csv (in {basic})\n"
        "  source 'crm': file not found: exports/crm.csv\n"
    )


def test_missing_key_column(basic: Path) -> None:
    _edit(basic / "crm.csv", "contact_id,stage", "contact,stage")
    result = invoke("validate")
    assert result.exit_code == 3
    assert result.stderr == (
        "error: source 'crm': key column 'contact_id' not found in the file "
        "(did you mean 'contact'?)\n"
    )


def test_missing_time_column_lists_the_columns(basic: Path) -> None:
    _edit(basic / "segments.yaml", "time: occurred_at", "time: sent_at")
    result = invoke("validate")
    assert result.exit_code == 3
    assert result.stderr == (
        "error: source 'email': time column 'sent_at' not found in the file; it has: "
        "contact_id, occurred_at, event_type, url, campaign\n"
    )


def test_unparseable_timestamp_in_a_declared_datetime_column(basic: Path) -> None:
    _edit(
        basic / "segments.yaml",
        "key: contact_id\n  email:",
        "key: contact_id\n    columns: {signed_up: datetime}\n  email:",
    )
    _edit(basic / "contacts.csv", "2026-06-15", "15/06/2026")
    result = invoke("validate")
    assert result.exit_code == 3
    assert result.stderr == (
        "error: contacts.csv:4: column 'signed_up': cannot parse '15/06/2026' as datetime "
        "(declared type)\n"
    )


def _run_error(project: Path) -> str:
    result = invoke("run", "--as-of", AS_OF)
    assert result.exit_code == 3, result.output
    no_traceback(result)
    assert not (project / "out").exists()
    return result.stderr.splitlines()[-1].replace(f"{project}/", "")


def test_duplicate_contact_key(basic: Path) -> None:
    with (basic / "contacts.csv").open("a", encoding="utf-8") as fh:
        fh.write("103,chloe@example.com,Chloe,FR,29,VP Sales,2026-06-15\n")
    assert _run_error(basic) == (
        "error: contacts.csv:7: duplicate contact key contact_id=103 (first at line 4)"
    )


def test_null_contact_key(basic: Path) -> None:
    _edit(basic / "contacts.csv", "104,dan", ",dan")
    assert _run_error(basic) == ("error: contacts.csv:5: contact key 'contact_id' is empty")


def test_relation_one_source_with_two_rows_for_a_key(basic: Path) -> None:
    with (basic / "crm.csv").open("a", encoding="utf-8") as fh:
        fh.write("101,sql,lee\n")
    assert _run_error(basic) == (
        "error: crm.csv:5: source 'crm' is relation: one but key contact_id=101 has several rows"
    )


def test_data_error_as_json(basic: Path) -> None:
    _edit(basic / "segments.yaml", "path: crm.csv", "path: exports/crm.csv")
    result = invoke("run", "--as-of", AS_OF, "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {
        "ok": False,
        "exit_code": 3,
        "error": "source 'crm': file not found: exports/crm.csv",
    }


def test_debug_shows_the_traceback(basic: Path) -> None:
    _edit(basic / "segments.yaml", "path: crm.csv", "path: exports/crm.csv")
    result = invoke("validate", "--debug")
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.endswith("error: source 'crm': file not found: exports/crm.csv\n")


def test_internal_errors_are_one_line_without_debug(
    basic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> api.Project:
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "load", boom)
    result = invoke("validate")
    assert result.exit_code == 4
    assert result.stderr == (
        "internal error: RuntimeError: boom (rerun with --debug for the traceback)\n"
    )
    no_traceback(result)
    result = invoke("validate", "--debug")
    assert isinstance(result.exception, RuntimeError)


# ---------------------------------------------------------------- run


def _normalise_run(text: str, project: Path) -> str:
    text = text.replace(str(project), "<project>")
    text = re.sub(r"run [0-9a-f]{12} ", "run <run-id> ", text)
    text = re.sub(r"\b\d\.\d{3}\b", "0.000", text)  # per-segment seconds in the table
    return re.sub(r"\b\d+\.\d\d s\b", "0.00 s", text)


def _members(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)


def test_run_writes_segments_and_run_json(basic: Path) -> None:
    result = invoke("run", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert_golden("run_summary", _normalise_run(result.stdout, basic))
    out = basic / "out"
    assert sorted(p.name for p in (out / "segments").iterdir()) == sorted(
        f"{n}.parquet" for n in MEMBERS
    )
    for name, keys in MEMBERS.items():
        df = pl.read_parquet(out / "segments" / f"{name}.parquet")
        assert df.columns == ["contact_id", "joined_at", "source"]
        assert df["contact_id"].to_list() == keys, name
        assert df["joined_at"].dtype == pl.Datetime("us", "UTC")
        assert {str(t) for t in df["joined_at"].to_list()} == {"2026-11-19 23:00:00+00:00"}
        assert set(df["source"].to_list()) == {"rule"}
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert {"run_id", "as_of", "segcli_version", "spec_fingerprint", "inputs", "segments"} <= set(
        run
    )
    assert run["as_of"] == AS_OF_UTC and run["segcli_version"] == __version__
    assert re.fullmatch(r"[0-9a-f]{12}", run["run_id"]) and run["spec_fingerprint"]
    assert sorted(Path(i["path"]).name for i in run["inputs"]) == [
        "contacts.csv",
        "crm.csv",
        "email.csv",
    ]
    for i in run["inputs"]:
        assert {"path", "size", "mtime"} <= set(i) and i["size"] > 0
    assert list(run["segments"]) == list(MEMBERS)
    for name, seg in run["segments"].items():
        assert {"kind", "size", "entered", "left", "seconds"} <= set(seg)
        assert (seg["kind"], seg["size"]) == ("dynamic", len(MEMBERS[name]))


def test_run_progress_goes_to_stderr_and_results_to_stdout(basic: Path) -> None:
    result = invoke("run", "--as-of", AS_OF)
    assert "segcli run" in result.stdout and "segcli run" not in result.stderr
    assert "evaluating the plan" in result.stderr


def test_run_csv_format(basic: Path) -> None:
    result = invoke("run", "--as-of", AS_OF, "--format", "csv")
    assert result.exit_code == 0, result.output
    seg = basic / "out" / "segments"
    assert sorted(p.name for p in seg.iterdir()) == sorted(f"{n}.csv" for n in MEMBERS)
    assert (seg / "quiet.csv").read_text(encoding="utf-8") == (
        "contact_id,joined_at,source\n"
        "102,2026-11-19T23:00:00+00:00,rule\n"
        "104,2026-11-19T23:00:00+00:00,rule\n"
        "105,2026-11-19T23:00:00+00:00,rule\n"
    )
    assert (basic / "out" / "run.json").exists()


def test_run_bad_format_is_a_usage_error(basic: Path) -> None:
    result = invoke("run", "--as-of", AS_OF, "--format", "xlsx")
    assert result.exit_code == 2
    assert result.stderr.endswith("error: unknown format 'xlsx': use parquet or csv\n")


def test_run_out_directory(basic: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    result = invoke("run", "--as-of", AS_OF, "--out", str(target))
    assert result.exit_code == 0, result.output
    assert not (basic / "out").exists()
    assert (target / "run.json").exists()
    assert _members(target / "segments" / "mqls.parquet")["contact_id"].to_list() == [101]


def test_run_one_segment_runs_its_dependencies_only(basic: Path) -> None:
    result = invoke("run", "--as-of", AS_OF, "--segment", "engaged_europe")
    assert result.exit_code == 0, result.output
    written = sorted(p.stem for p in (basic / "out" / "segments").iterdir())
    assert written == ["engaged_europe", "europe", "pricing_clickers", "vps"]
    run = json.loads((basic / "out" / "run.json").read_text(encoding="utf-8"))
    assert list(run["segments"]) == ["europe", "vps", "pricing_clickers", "engaged_europe"]
    df = _members(basic / "out" / "segments" / "engaged_europe.parquet")
    assert df["contact_id"].to_list() == [101]


def test_run_unknown_segment_has_a_hint(basic: Path) -> None:
    result = invoke("run", "--as-of", AS_OF, "--segment", "engaged_europa")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "error: unknown segment 'engaged_europa' (did you mean 'engaged_europe'?)"
    )
    assert not (basic / "out").exists()


def test_dry_run_writes_nothing(basic: Path) -> None:
    before = sorted(p.name for p in basic.iterdir())
    result = invoke("run", "--as-of", AS_OF, "--dry-run")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in basic.iterdir()) == before
    assert result.stdout.splitlines()[-1].endswith("; nothing written (dry run)")


def test_run_json(basic: Path) -> None:
    result = invoke("run", "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert data["as_of"] == AS_OF_UTC
    assert [s["name"] for s in data["segments"]] == list(MEMBERS)
    assert {s["name"]: s["size"] for s in data["segments"]} == {
        n: len(k) for n, k in MEMBERS.items()
    }


def test_run_bad_as_of_is_a_usage_error(basic: Path) -> None:
    result = invoke("run", "--as-of", "next tuesday")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    no_traceback(result)


# ---------------------------------------------------------------- show


def test_show_table_with_limit_and_columns(ran: Path) -> None:
    cfg = str(ran / "segments.yaml")
    result = invoke("show", "quiet", "-c", cfg, "--limit", "2", "--columns", "first_name,email")
    assert result.exit_code == 0, result.output
    assert_golden("show_quiet_table", re.sub(r"run [0-9a-f]{12},", "run <run-id>,", result.stdout))


def test_show_csv(ran: Path) -> None:
    cfg = str(ran / "segments.yaml")
    result = invoke("show", "europe", "-c", cfg, "--format", "csv", "--columns", "country")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "contact_id,joined_at,source,country\n"
        "101,2026-11-19T23:00:00+00:00,rule,DE\n"
        "103,2026-11-19T23:00:00+00:00,rule,FR\n"
    )
    # Which run it is goes to stderr, so that stdout stays a clean CSV.
    assert re.fullmatch(
        r"europe: 2 members — run [0-9a-f]{12}, as of 2026-11-20T00:00:00\+01:00\n",
        result.stderr,
    )


def test_show_json(ran: Path) -> None:
    cfg = str(ran / "segments.yaml")
    result = invoke("show", "quiet", "-c", cfg, "--format", "json", "--limit", "2")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["contact_id"] for r in rows] == [102, 104]
    assert rows[0]["email"] == "ben@example.com" and rows[1]["age"] is None
    assert rows[0]["joined_at"] == AS_OF_UTC
    data = json.loads(invoke("show", "quiet", "-c", cfg, "--json", "--limit", "2").stdout)
    assert data["members"] == rows
    assert (data["segment"], data["as_of"], data["total"]) == ("quiet", AS_OF_UTC, 3)
    assert re.fullmatch(r"[0-9a-f]{12}", data["run_id"])


def test_show_unknown_column(ran: Path) -> None:
    result = invoke("show", "quiet", "-c", str(ran / "segments.yaml"), "--columns", "nmae")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unknown column(s) nmae; contacts has: contact_id,")


def test_show_unknown_segment(ran: Path) -> None:
    result = invoke("show", "quite", "-c", str(ran / "segments.yaml"))
    assert result.exit_code == 2
    assert result.stderr == "error: unknown segment 'quite' (did you mean 'quiet'?)\n"


def test_show_before_any_run(basic: Path) -> None:
    result = invoke("show", "quiet")
    assert result.exit_code in (3, 4)
    assert result.stderr.startswith("error: ") and "segcli run" in result.stderr
    no_traceback(result)


# ---------------------------------------------------------------- explain


def test_explain_segment(basic: Path) -> None:
    result = invoke("explain", "engaged_europe", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert_golden("explain_engaged_europe", result.stdout)


def test_explain_contact(basic: Path) -> None:
    result = invoke("explain", "--contact", "103", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert_golden("explain_contact_103", result.stdout)


def test_explain_json(basic: Path) -> None:
    result = invoke("explain", "vps", "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["words"][:3] == [
        "segment vps (dynamic)",
        "  matches contacts where:",
        "    title starts with 'VP'",
    ]
    assert data["where"] == {"text": "title starts with 'VP'"}


def test_explain_needs_a_name_or_a_contact(basic: Path) -> None:
    for args in ((), ("vps", "--contact", "101")):
        result = invoke("explain", *args)
        assert result.exit_code == 2
        assert result.stderr == "error: give a segment NAME or --contact KEY\n"


def test_explain_unknown_contact(basic: Path) -> None:
    result = invoke("explain", "--contact", "999", "--as-of", AS_OF)
    assert result.exit_code == 2
    assert result.stderr == "error: contact contact_id=999 is not in the contacts export\n"


def test_explain_writes_nothing(basic: Path) -> None:
    before = sorted(p.name for p in basic.iterdir())
    invoke("explain", "hot", "--as-of", AS_OF)
    assert sorted(p.name for p in basic.iterdir()) == before


# ---------------------------------------------------------------- help and entry points


COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_top_level_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for name in COMMANDS:
        assert re.search(rf"^│ {name}\s+\S", result.stdout, flags=re.M), name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    cmd = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    assert cmd.help and cmd.help.strip()
    for param in cmd.params:
        assert getattr(param, "help", None), f"{name}: {param.name} has no help"
    result = invoke(name, "--help")
    assert result.exit_code == 0
    assert f"Usage: segcli {name}" in result.stdout
    assert cmd.help.split()[0] in result.stdout


def test_version() -> None:
    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"segcli {__version__}\n")


def test_python_dash_m_segcli_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "segcli", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: python -m segcli" in proc.stdout
    for name in COMMANDS:
        assert name in proc.stdout


def test_flags_show_no_type_in_help() -> None:
    """A flag takes no value (`--json true` is an error), so its help shows no `<bool>`."""
    for args in (["--help"], ["show", "--help"], ["run", "--help"]):
        result = invoke(*args)
        assert result.exit_code == 0
        assert "<bool>" not in result.stdout, args
    show = invoke("show", "--help").stdout
    assert re.search(r"│ --json\s+Print the result as JSON\.", show)
    assert re.search(r"│ --limit\s+<int>\s+At most", show)
    assert "Usage: segcli show [OPTIONS] {NAME}" in show
    assert invoke("run", "--json", "true").exit_code == 2


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_that_prints_a_result_takes_json(name: str) -> None:
    cmd = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    assert "--json" in [o for p in cmd.params for o in p.opts], name


def test_segment_takes_comma_separated_names(basic: Path) -> None:
    result = invoke("run", "--as-of", AS_OF, "--segment", "vps,quiet", "--segment", "europe")
    assert result.exit_code == 0, result.output
    written = sorted(p.stem for p in (basic / "out" / "segments").iterdir())
    assert written == ["europe", "quiet", "vps"]
    result = invoke("run", "--as-of", AS_OF, "--segment", "vps,quite")
    assert result.exit_code == 2 and "unknown segment 'quite'" in result.stderr


def test_schema_json_names_the_file_written(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    result = invoke("schema", "--out", str(target), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"written": str(target)}
    assert json.loads(target.read_text())["type"] == "object"
