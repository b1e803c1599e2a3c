"""What the README promises a new user holds (issue 20): where `mm` lives after `make install`,
and the exit-status table names a test for every row that exists."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_says_where_mm_lives():
    head = README[:README.index("## What it is")]
    assert "source .venv/bin/activate" in head and ".venv/bin/mm" in head


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_install_says_how_to_reach_mm():
    out = subprocess.run(["make", "-n", "install"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert "source .venv/bin/activate" in out.stdout, out.stdout + out.stderr


def test_every_exit_status_row_names_a_test_that_exists():
    table = README[README.index("#### Exit statuses"):README.index("#### Reading the report")]
    rows = [line for line in table.splitlines() if re.match(r"^\| [0-9] \|", line)]
    assert {r.split("|")[1].strip() for r in rows} == {"0", "1", "2", "3", "4"}
    for row in rows:
        named = re.findall(r"`((?:[\w/]+\.py::)?test_\w+)`|`([\w/]+\.py)`", row.split("|")[4])
        assert named, row
        for test, path in named:
            if test:
                file, _, name = test.rpartition("::")
                file = file or "test_exit_statuses.py"
            else:
                file, name = path, ""
            matches = list((ROOT / "tests").rglob(Path(file).name))
            assert matches, f"{file} (row {row[:12]})"
            if name:
                assert f"def {name}(" in matches[0].read_text(), name
