"""``claims.md``: the claims scorecard as a page."""

from __future__ import annotations

from benchmark.claims import Claim, Verdict
from benchmark.report.markdown import md_table
from benchmark.statistics import ALPHA, fmt_p


def claims_markdown(results: list[tuple[Claim, Verdict]], suite: str, missing_methods: list[str]) -> str:
    lines = [f"# Claims scorecard: suite `{suite}`", "",
             f"Each paper's qualitative claim, checked on the stored runs (alpha {ALPHA}). Supported: the "
             "one-sided test in the claimed direction is significant; not supported: the opposite direction "
             "is; inconclusive: neither, or the data are missing (the last column says which data were used).", ""]
    lines += md_table(["method", "claim", "test", "effect", "p", "verdict", "data used", "source"],
                      [[c.method, c.statement, v.test, v.effect, fmt_p(v.p), f"**{v.verdict}**", v.used, c.source]
                       for c, v in results])
    if missing_methods:
        lines += ["", f"Methods with no claim written yet: {', '.join(missing_methods)}."]
    return "\n".join(lines) + "\n"
