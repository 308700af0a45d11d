"""The README's leaderboard block: the summary of a leaderboard, copied between two markers."""

from __future__ import annotations

from pathlib import Path

from benchmark.report.markdown import SUMMARY_END

README_START, README_END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


def _relative(path: Path, readme: Path) -> str:
    try:
        return path.resolve().relative_to(readme.resolve().parent).as_posix()
    except ValueError:
        return path.name


def update_readme(readme: Path, board: Path) -> None:
    """Replace the README's block between the leaderboard markers with the generated tables (headings
    demoted one level, so they nest under the README's section): the summary only, when the
    leaderboard has one (several datasets), with a pointer to the per-dataset tables."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} block to replace")
    board_text = board.read_text()
    summary = board_text.split(SUMMARY_END, 1)[0]
    if "## Summary" in summary:
        board_text = summary + (
            f"Per dataset (every column with its interval, robustness, failures): `{_relative(board, readme)}`.\n")
    body = "\n".join("#" + line if line.startswith("#") else line for line in board_text.splitlines()[1:])
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{body.strip()}\n{README_END}{tail}")
