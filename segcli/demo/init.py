"""`segcli init`: a ready project in a directory — spec, sample data, .gitignore, next steps."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from segcli.errors import UsageError

GITIGNORE = "# segcli outputs and run state\nout/\n.segcli/\n"
README = """# Segments

This project is computed with [segcli](https://pypi.org/project/segcli/).

    segcli validate                 # check segments.yaml and the exports' columns
    segcli run --as-of 2026-11-20   # compute segments and scores into out/
    segcli check                    # data checks and expectations (for CI)
    segcli show mql                 # who is in a segment

Replace sample_data/ with your own exports and edit segments.yaml.
"""


def init_project(directory: Path) -> list[Path]:
    """Create a new project in `directory` (created if needed); refuses to overwrite a spec."""
    from segcli.demo.sample import write_demo

    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "segments.yaml"
    if spec.exists():
        raise UsageError(f"{spec} already exists; segcli init does not overwrite a project")
    template = resources.files("segcli").joinpath("templates/segments.yaml").read_text("utf-8")
    written = [spec]
    spec.write_text(template, encoding="utf-8")
    write_demo(directory / "sample_data")
    # The demo's on_enter command (segments.yaml runs it after each run).
    script = resources.files("segcli").joinpath("templates/notify_sales.py.txt").read_text("utf-8")
    (directory / "sample_data" / "scripts").mkdir(exist_ok=True)
    (directory / "sample_data" / "scripts" / "notify_sales.py").write_text(script, "utf-8")
    written.append(directory / "sample_data")
    for name, text in ((".gitignore", GITIGNORE), ("README.md", README)):
        path = directory / name
        if not path.exists():
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
