"""Model selection: which hyperparameter draw of a method the leaderboard shows, as a query over stored
records (changing the rule retrains nothing). Every rule is named and recorded with the leaderboard.

- ``clean_val``: the best mean validation log-likelihood (the default, as early stopping's), on the
  validation labels the run's training condition keeps: accuracy is flat where one class dominates.
- ``clean_val_accuracy``: the best mean validation accuracy, on the same labels.
- ``train_condition_val``: the best mean validation log-likelihood under the run's own training
  condition applied to the validation split (e.g. modalities missing at the training rate): only
  conditions the method could see while training, never a test condition.
- ``oracle_test``: the best mean test accuracy over the whole test grid. It reads test data, so it is
  only ever shown in a separate table, never on the main leaderboard.

The score of a draw is its mean over the seeds that finished; ties go to the lower draw (0 = defaults).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from benchmark.grouped import Grouped
from benchmark.results import Results

GROUP = ["method", "dataset", "train_condition"]


def _val(condition: str, metric: str = "nll") -> pd.Series:
    """A validation score per run, higher is better: minus the NLL (the log-likelihood), or accuracy."""
    sign = -1.0 if metric == "nll" else 1.0

    def score(table: pd.DataFrame) -> pd.Series:
        rows = table[(table["split"] == "val") & (table["condition"] == condition) & (table["metric"] == metric)]
        return sign * rows.set_index("run_id", drop=True)["value"]
    return score


def _oracle(table: pd.DataFrame) -> pd.Series:
    rows = table[(table["split"] == "test") & (table["metric"] == "accuracy")]
    return rows.groupby("run_id", observed=True, sort=False)["value"].mean()


class Rule(NamedTuple):
    score: object  # table -> one score per run_id
    reads_test: bool  # an oracle: never on the main leaderboard
    text: str  # how the leaderboard describes it


RULES: dict[str, Rule] = {
    "clean_val": Rule(_val("clean"), False,
                      "the hyperparameter draw with the best mean validation log-likelihood on the labels its "
                      "training condition keeps"),
    "clean_val_accuracy": Rule(_val("clean", "accuracy"), False,
                               "the draw with the best mean validation accuracy"),
    "train_condition_val": Rule(_val("train_condition"), False,
                                "the draw with the best validation log-likelihood under the training condition"),
    "oracle_test": Rule(_oracle, True, "the draw with the best mean TEST accuracy: an oracle, not a fair comparison"),
}
DEFAULT_RULE = "clean_val"


def check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"no selection rule {rule!r}; known: {', '.join(RULES)}")


def draw_scores(results: Results, rule: str) -> dict[tuple[str, str, str], dict[int, float]]:
    """Per (method, dataset, training condition): each draw's mean score over its finished seeds (-inf for
    a draw with none)."""
    check_rule(rule)
    runs = results.runs()
    score = RULES[rule].score(results.table)
    runs["score"] = runs["run_id"].map(score).astype(float)
    runs.loc[runs["status"] != "ok", "score"] = math.nan
    # Every draw's np.mean over its finite scores (in row order) at once.
    groups = runs.groupby([*GROUP, "draw"], sort=True)
    keys = groups.size().index
    code = groups.ngroup().to_numpy()
    score = runs["score"].to_numpy(float)
    finite = np.isfinite(score)
    means = Grouped(code[finite], len(keys)).mean(score[finite])
    counts = np.bincount(code[finite], minlength=len(keys))
    out: dict[tuple[str, str, str], dict[int, float]] = {}
    for (method, dataset, cond, draw), mean, n in zip(keys, means, counts, strict=True):
        out.setdefault((method, dataset, cond), {})[int(draw)] = float(mean) if n else -math.inf
    return out


def select(results: Results, rule: str = DEFAULT_RULE) -> tuple[Results, dict[tuple[str, str, str], int]]:
    """The results of the chosen draw of every (method, dataset, training condition), and the choices."""
    chosen = {key: max(sorted(scores), key=lambda d: (scores[d], -d))
              for key, scores in draw_scores(results, rule).items()}
    kept = [r for r in results.records if r.spec.draw == chosen[(r.method, r.dataset, r.spec.train_condition)]]
    if len(kept) == len(results.records):
        return results, chosen
    ids = {r.run_id for r in kept}
    table = results.table[results.table["run_id"].isin(ids)].reset_index(drop=True)
    stale = {k: v for k, v in results.stale.items() if k in ids}
    return replace(results, records=kept, stale=stale, table=table), chosen


def tuning_spread(results: Results) -> dict[tuple[str, str, str], tuple[int, float]]:
    """Per group: the number of draws and the standard deviation, over draws, of each draw's mean clean
    test accuracy: how sensitive a method is to its hyperparameters (descriptive, never used to select)."""
    runs = results.runs()
    table = results.table
    clean = table[(table["split"] == "test") & (table["condition"] == "clean") & (table["metric"] == "accuracy")]
    runs["clean"] = runs["run_id"].map(clean.set_index("run_id")["value"]).astype(float)
    # Every group's draws at once: draws numbered in order of first appearance (as groupby(sort=False)
    # visits them), each draw's np.mean over its finished runs, then np.std over those means in that order.
    groups = runs.groupby(GROUP, sort=True)
    keys = groups.size().index
    group = groups.ngroup().to_numpy()
    draw = runs.groupby([*GROUP, "draw"], sort=False).ngroup().to_numpy()
    n_draws = draw.max() + 1 if len(draw) else 0
    group_of_draw = np.zeros(n_draws, dtype=np.int64)
    group_of_draw[draw] = group
    ok = (runs["status"] == "ok").to_numpy()
    means = Grouped(draw[ok], n_draws).mean(runs["clean"].to_numpy(float)[ok])
    finished = np.bincount(draw[ok], minlength=n_draws) > 0
    spread = Grouped(group_of_draw[finished], len(keys)).reduce(means[finished], lambda m: m.std(axis=1))
    counts = np.bincount(group_of_draw, minlength=len(keys))
    kept = np.bincount(group_of_draw[finished], minlength=len(keys))
    return {tuple(key): (int(counts[i]), float(spread[i]) if kept[i] > 1 else 0.0) for i, key in enumerate(keys)}
