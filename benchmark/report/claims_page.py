"""``results/claims.md``: the scorecard of every paper's claims and the known answers, one table each."""

from __future__ import annotations

from pathlib import Path

from benchmark.claims import ClaimResult, scorecard
from benchmark.report.markdown import md_table
from benchmark.statistics import ALPHA, fmt_p

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


def write_claims(out: Path) -> list[ClaimResult]:
    """Check every claim of the catalogue on its suites' records and write the page to ``out``."""
    from benchmark.claim_catalogue import CLAIMS
    from benchmark.results import Results, load, suite_scope

    def load_suite(name: str) -> Results | None:
        scope = suite_scope(name)
        return load(scope.results_dir, scope) if (scope.results_dir / "runs").is_dir() else None

    results = scorecard(CLAIMS, load_suite)
    out.write_text(claims_markdown(results))
    return results
