"""Results that are never stale: every committed result under ``benchmarks/results/`` names the commit and
command that made it, and ``benchmarks/README.md`` lists it with both and its status.

The rules (:func:`problems`), on the README's section "Results and their provenance" (a table: report, the
files that come with it, commit, command, status):

- every file under ``benchmarks/results/`` is a row's report or matches one of its other files (globs
  relative to the folder); every name a row gives is there (a row that outlives its files fails too);
- a row's report is a ``.md`` with the provenance line (:data:`benchmarks.runlib.PROVENANCE`, written by
  ``runlib.Output``), and the row's commit and command are the line's; a CSV stamped by ``Output.csv`` (a
  first line ``# Made by ...``) has a well-formed stamp; any other CSV, figure or record is covered by its
  row's report;
- a row's status is ``current`` or ``made at ...`` (what it was made with and what still holds), or
  ``pending ...`` (being regenerated: the only rows whose report may lack the line);
- every commit named exists in the repository's history, where there is one to ask (a clean clone has the
  full history; a shallow clone or an export without git skips this rule alone).

Quick outputs (``*_quick*``, ``quick/``) are never committed results and are skipped.
"""
from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from benchmarks import runlib

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Results and their provenance"
STATUSES = ("current", "made at ", "pending")


def result_files(results: Path) -> list[str]:
    """The result files under ``results`` as POSIX paths relative to it, quick outputs left out."""
    return sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file()
                  and not any("_quick" in part or part == "quick" for part in p.relative_to(results).parts))


def readme_rows(readme: str) -> list[dict]:
    """The rows of the README's results table: ``report``, ``files`` (globs), ``commit``, ``command``, ``status``."""
    if SECTION not in readme:
        return []
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| `") else []
        if len(cells) != 5:
            continue
        ticked = [re.findall(r"`([^`]+)`", c) for c in cells[:4]]
        rows.append({"report": (ticked[0] or [""])[0], "files": ticked[1], "commit": (ticked[2] or [cells[2]])[0],
                     "command": (ticked[3] or [cells[3]])[0], "status": cells[4], "line": line[:80]})
    return rows


def missing_commits(commits: set[str], repo: Path = ROOT) -> set[str] | None:
    """The ``commits`` that ``repo``'s git history lacks, or ``None`` when there is no full history to ask."""
    git = shutil.which("git")
    if git is None or not commits:
        return None if git is None else set()
    shallow = subprocess.run([git, "rev-parse", "--is-shallow-repository"], cwd=repo, capture_output=True, text=True)
    if shallow.returncode != 0 or shallow.stdout.strip() != "false":
        return None
    asked = sorted(commits)
    found = subprocess.run([git, "cat-file", "--batch-check"], cwd=repo, capture_output=True, text=True,
                           input="".join(f"{c}^{{commit}}\n" for c in asked))
    answers = found.stdout.splitlines()
    return {c for c, a in zip(asked, answers) if a.endswith("missing") or a.startswith("error")}


def same_commit(a: str, b: str) -> bool:
    """Whether two abbreviations (7 to 40 hex digits) name the same commit: one is the other's prefix."""
    return len(a) >= 7 and len(b) >= 7 and (a.startswith(b) or b.startswith(a))


def problems(results: Path, readme: str, repo: Path | None = ROOT) -> list[str]:
    """What breaks the rules above for the folder ``results`` and the README text ``readme``: one line each
    (empty: all is well). ``repo``: the git repository whose history the commits must be in (``None``: not asked)."""
    rows = readme_rows(readme)
    if not rows:
        return [f"benchmarks/README.md has no table under {SECTION!r}"]
    files = result_files(results)
    out, covered, commits = [], set(), {}
    for row in rows:
        where = f"README row of `{row['report']}`"
        matched = [f for f in files if f == row["report"]]
        for pattern in row["files"]:
            hits = [f for f in files if fnmatch.fnmatchcase(f, pattern)]
            if not hits:
                out.append(f"{where} lists `{pattern}`: no such file")
            matched += hits
        covered.update(matched)
        if not row["status"].startswith(STATUSES):
            out.append(f"{where}: status must start with one of {STATUSES}, got {row['status'][:40]!r}")
        if PurePosixPath(row["report"]).suffix != ".md":
            out.append(f"{where}: the report must be a .md file")
            continue
        if row["report"] not in files:
            out.append(f"{where}: no such report")
            continue
        found = runlib.read_provenance((results / row["report"]).read_text(errors="replace"))
        if found is None:
            if not row["status"].startswith("pending"):
                out.append(f"{row['report']} has no provenance line ('Made by `COMMAND` at commit C, DATE UTC.')")
            continue
        commits[found["commit"]] = row["report"]
        if not same_commit(found["commit"], row["commit"]):
            out.append(f"{where} says commit {row['commit']}, the report says {found['commit']}")
        if found["command"] != row["command"]:
            out.append(f"{where}: its command is not the report's `{found['command']}`")
    for name in files:
        if name not in covered:
            out.append(f"{name} is in no row of benchmarks/README.md's results table (add its row: commit, command, status)")
        elif name.endswith(".csv"):
            with open(results / name, errors="replace") as fh:
                first = fh.readline()
            if first.startswith("# Made by") and runlib.read_provenance(first) is None:
                out.append(f"{name}: its first line is a broken provenance stamp")
    lacking = missing_commits(set(commits), repo) if repo is not None else None
    out += [f"{commits[c]}: commit {c} is not in this repository's history" for c in sorted(lacking or ())]
    return out


def test_every_result_has_its_provenance_and_its_readme_row():
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert problems(runlib.RESULTS, readme) == []


GOOD = "# A result\n\nMade by `python -m benchmarks.demo --x 1` at commit {commit}, 2026-12-02 04:00 UTC.\n\nbody\n"


def made_up(tmp_path: Path, commit: str) -> tuple[Path, str]:
    """A results folder with one report, its CSV and a record, and the README table that lists them."""
    results = tmp_path / "results"
    (results / "demo_runs").mkdir(parents=True)
    (results / "demo.md").write_text(GOOD.format(commit=commit))
    (results / "demo.csv").write_text("a,b\n1,2\n")
    (results / "demo_runs" / "r1.json").write_text("{}")
    (results / "demo_quick.md").write_text("# a quick output: skipped\n")
    readme = (f"# Benchmarks\n\n{SECTION}\n\n| report | with it | commit | command | status |\n|---|---|---|---|---|\n"
              f"| `demo.md` | `demo.csv`, `demo_runs/*.json` | `{commit}` | `python -m benchmarks.demo --x 1` | current |\n\n"
              "## Next\n")
    return results, readme


def head_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True) \
        if shutil.which("git") else None
    return done.stdout.strip() if done is not None and done.returncode == 0 else "0123456789"


def test_the_check_passes_a_listed_and_stamped_folder(tmp_path):
    results, readme = made_up(tmp_path, head_commit())
    assert problems(results, readme) == []


@pytest.mark.parametrize("change, expected", [
    ("strip", "demo.md has no provenance line"),
    ("unlisted", "extra.csv is in no row"),
    ("gone", "lists `demo.csv`: no such file"),
    ("commit", "says commit abcdef0123, the report says"),
    ("command", "its command is not the report's"),
    ("status", "status must start with one of"),
    ("stamp", "extra.csv: its first line is a broken provenance stamp"),
    ("no table", "has no table under"),
])
def test_the_check_fails_a_result_without_its_provenance_or_row(tmp_path, change, expected):
    """The same check on a made-up folder: each way a result can lose its provenance is caught."""
    results, readme = made_up(tmp_path, head_commit())
    if change == "strip":
        (results / "demo.md").write_text("# A result\n\nbody without the line\n")
    elif change == "unlisted":
        (results / "extra.csv").write_text("a\n1\n")
    elif change == "gone":
        (results / "demo.csv").unlink()
    elif change == "commit":
        readme = readme.replace(f"`{head_commit()}`", "`abcdef0123`")
    elif change == "command":
        readme = readme.replace("--x 1` | current", "--x 2` | current")
    elif change == "status":
        readme = readme.replace("| current |", "| fine |")
    elif change == "stamp":
        (results / "extra.csv").write_text("# Made by hand on a Tuesday\na\n1\n")
        readme = readme.replace("`demo.csv`,", "`demo.csv`, `extra.csv`,")
    elif change == "no table":
        readme = "# Benchmarks\n"
    found = problems(results, readme)
    assert any(expected in p for p in found), found


def test_a_pending_report_may_lack_the_line_and_commits_must_exist(tmp_path):
    results, readme = made_up(tmp_path, head_commit())
    (results / "demo.md").write_text("# A result being regenerated\n")
    assert problems(results, readme.replace("| current |", "| pending: the lead regenerates it |")) == []
    if missing_commits({head_commit()}) is None:
        pytest.skip("no full git history here: the commit rule is not asked")
    results, readme = made_up(tmp_path / "other", "fedcba9876")
    assert problems(results, readme) == ["demo.md: commit fedcba9876 is not in this repository's history"]
