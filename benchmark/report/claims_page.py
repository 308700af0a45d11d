"""``results/claims.md``: the scorecard of every paper's claims and the known answers, one table each."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.claims import ClaimResult, scorecard
from benchmark.report.markdown import md_table
from benchmark.statistics import ALPHA, fmt_p

if TYPE_CHECKING:
    from benchmark.results import Results

_HEADER = ["claim", "suite", "unit", "n", "effect [95% interval]", "test", "p", "verdict",
           "at matched budget", "data used"]


def _row(r: ClaimResult) -> list[str]:
    v = r.verdict
    return [f"{r.claim.statement} (`{r.claim.key}`)", f"`{r.claim.suite}`", v.unit, str(v.n), v.effect_text(),
            v.test, fmt_p(v.p), f"**{v.verdict}**", r.survives, v.used]


def claims_markdown(results: list[ClaimResult], missing_methods: list[str] | None = None) -> str:
    papers = [r for r in results if r.claim.kind == "paper"]
    known = [r for r in results if r.claim.kind != "paper"]
    lines = ["# Claims scorecard", "",
             f"Each seed paper's claims, checked on the stored runs (alpha {ALPHA}), each with its unit: every "
             "run is first reduced to one value (a family's mean or worst case within the run), then to one "
             "value per unit: per-dataset means over seeds when a claim spans datasets (Wilcoxon signed-rank "
             "across datasets from 6 on, a t-test below), seeds when it reads one dataset, runs where a claim "
             "is about every run. Correlated values are never pooled as independent. Supported: the "
             "one-sided test in the claimed direction rejects; not supported: the opposite one does; "
             "inconclusive: neither, or the data are missing (the last column says which data were used). "
             "Non-inferiority claims state their margin. 'At matched budget' re-checks the claim on a suite "
             "whose rows have about the same number of parameters, and says whether the verdict survives.",
             "", "Rebuild: `python -m benchmark claims` (reads every suite named below).", "",
             "## The papers' claims", ""]
    by_method: dict[str, list[ClaimResult]] = {}
    for r in papers:
        by_method.setdefault(r.claim.method, []).append(r)
    for method, rows in by_method.items():
        lines += [f"### {method}", "", f"Source: {rows[0].claim.source}.", ""]
        lines += md_table(_HEADER, [_row(r) for r in rows]) + [""]
    lines += ["## Known answers (sanity checks of the suite, not of any paper)", "",
              "synthetic_pid's construction fixes these outcomes; a change to a method, a protocol or the "
              "generator that breaks one fails `tests/test_known_answers.py`.", ""]
    lines += md_table(_HEADER, [_row(r) for r in known])
    if missing_methods:
        lines += ["", f"Methods with no claim written yet: {', '.join(missing_methods)}."]
    return "\n".join(lines) + "\n"


def fresh_results(name: str, results_dir: Path | None = None) -> Results | None:
    """A suite's fresh records (None when it has none): a stale record (older code) never decides a claim."""
    from benchmark.results import load, suite_scope

    scope = suite_scope(name, results_dir)
    if not (scope.results_dir / "runs").is_dir():
        return None
    results = load(scope.results_dir, scope)
    fresh = [r for r in results.records if r.run_id not in results.stale]
    return replace(results, records=fresh, table=results.table[~results.table["stale"].astype(bool)])


def write_claims(out: Path) -> list[ClaimResult]:
    """Check every claim of the catalogue on its suites' records and write the page to ``out``."""
    from benchmark.claim_catalogue import CLAIMS

    results = scorecard(CLAIMS, fresh_results)
    out.write_text(claims_markdown(results))
    return results
