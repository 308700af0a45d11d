"""Model selection: which hyperparameter draw of a method the leaderboard shows, as a query over stored
records (changing the rule retrains nothing). Every rule is named and recorded with the leaderboard.

- ``clean_val``: the best mean validation accuracy on the clean validation split (the default).
- ``train_condition_val``: the best mean validation accuracy under the run's own training condition
  applied to the validation split (e.g. modalities missing at the training rate): only conditions the
  method could see while training, never a test condition.
- ``oracle_test``: the best mean test accuracy over the whole test grid. It reads test data, so it is
  only ever shown in a separate table, never on the main leaderboard.

The score of a draw is its mean over the seeds that finished; ties go to the lower draw (0 = defaults).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from benchmark.records import dataset_label

Record = dict[str, Any]


def _val(key: str) -> Callable[[Record], float]:
    def score(r: Record) -> float:
        return float(r.get("val_metrics", {}).get(key, {}).get("accuracy", math.nan))
    return score


def _oracle(r: Record) -> float:
    return float(np.mean([m["accuracy"] for m in r["metrics"].values()]))


class Rule(NamedTuple):
    score: Callable[[Record], float]
    reads_test: bool  # an oracle: never on the main leaderboard
    text: str  # how the leaderboard describes it


RULES: dict[str, Rule] = {
    "clean_val": Rule(_val("clean"), False, "the hyperparameter draw with the best mean clean validation accuracy"),
    "train_condition_val": Rule(_val("train_condition"), False,
                                "the draw with the best validation accuracy under the training condition"),
    "oracle_test": Rule(_oracle, True, "the draw with the best mean TEST accuracy: an oracle, not a fair comparison"),
}
DEFAULT_RULE = "clean_val"


def check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ValueError(f"no selection rule {rule!r}; known: {', '.join(RULES)}")


def _group(records: list[Record]) -> dict[tuple[str, str, str], dict[int, list[Record]]]:
    groups: dict[tuple[str, str, str], dict[int, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        s = r["spec"]
        groups[(s["method"], dataset_label(s), s["train_condition"])][int(s.get("draw", 0))].append(r)
    return groups


def draw_scores(records: list[Record], rule: str) -> dict[tuple[str, str, str], dict[int, float]]:
    """Per (method, dataset, training condition): each draw's mean score over its finished seeds."""
    check_rule(rule)
    score = RULES[rule].score
    out = {}
    for key, draws in _group(records).items():
        out[key] = {}
        for d, recs in draws.items():
            values = [score(r) for r in recs if r.get("status") == "ok"]
            values = [v for v in values if np.isfinite(v)]
            out[key][d] = float(np.mean(values)) if values else -math.inf
    return out


def select(records: list[Record], rule: str = DEFAULT_RULE) -> tuple[list[Record], dict[tuple[str, str, str], int]]:
    """The records of the chosen draw of every (method, dataset, training condition), and the choices."""
    chosen = {key: max(sorted(scores), key=lambda d: (scores[d], -d))
              for key, scores in draw_scores(records, rule).items()}
    kept = [r for r in records
            if int(r["spec"].get("draw", 0)) == chosen[(r["spec"]["method"], dataset_label(r["spec"]),
                                                         r["spec"]["train_condition"])]]
    return kept, chosen


def tuning_spread(records: list[Record]) -> dict[tuple[str, str, str], tuple[int, float]]:
    """Per group: the number of draws and the standard deviation, over draws, of each draw's mean clean
    test accuracy: how sensitive a method is to its hyperparameters (descriptive, never used to select)."""
    out = {}
    for key, draws in _group(records).items():
        means = [np.mean([r["metrics"]["clean"]["accuracy"] for r in recs if r.get("status") == "ok"])
                 for recs in draws.values() if any(r.get("status") == "ok" for r in recs)]
        out[key] = (len(draws), float(np.std(means)) if len(means) > 1 else 0.0)
    return out
