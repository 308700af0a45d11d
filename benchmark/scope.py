"""What of a results folder belongs to a suite, read from the suite's TOML file alone (no registry, no
torch, no pandas): cheap enough to name a rebuild's folder before anything heavy is imported."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.paths import REPO_ROOT
from benchmark.records import RunRecord, dataset_label
from benchmark.suite_files import noninferiority_margin, suite_file


@dataclass(frozen=True)
class SuiteScope:
    """What of a results folder belongs to a suite, read from its TOML file alone (no registry, no torch):
    methods (None = all), dataset labels (None = all), seeds, training conditions, the budget keys it
    sets and the number of hyperparameter draws."""

    name: str
    results_dir: Path
    methods: frozenset[str] | None = None
    datasets: frozenset[str] | None = None
    seeds: frozenset[int] | None = None
    training_conditions: frozenset[str] | None = None
    budget: dict[str, Any] = field(default_factory=dict)
    hparam_draws: int | None = None  # None: every draw
    baseline: str | None = "late_fusion"
    selection_rule: str = "clean_val"
    noninferiority_margin: float = 0.01

    def covers(self, rec: RunRecord) -> bool:
        s = rec.spec
        return ((self.methods is None or s.row in self.methods)
                and (self.datasets is None or rec.dataset in self.datasets)
                and (self.seeds is None or s.seed in self.seeds)
                and (self.training_conditions is None or s.train_condition in self.training_conditions)
                and all(s.budget.get(k) == v for k, v in self.budget.items())
                and (self.hparam_draws is None or s.draw < self.hparam_draws))

    @classmethod
    def of_folder(cls, folder: Path) -> SuiteScope:
        """Everything in a folder (no suite named)."""
        return cls(name=folder.name, results_dir=folder)


def suite_scope(name_or_path: str, results: Path | None = None) -> SuiteScope:
    """The scope of a suite file (``benchmark/suites/NAME.toml`` or a path)."""
    path = suite_file(name_or_path)
    raw = tomllib.loads(path.read_text())
    params = raw.get("dataset_params", {})
    datasets = raw.get("datasets", "all")
    labels = None
    if datasets != "all":
        labels = frozenset(
            dataset_label({"dataset": e["name"], "dataset_params": {k: v for k, v in e.items() if k != "name"}})
            if isinstance(e, dict) else dataset_label({"dataset": e, "dataset_params": params.get(e, {})})
            for e in datasets)
    methods = raw.get("methods", "all")
    listed = methods if isinstance(methods, list) else []
    variants = [str(v.get("label")) for v in [*raw.get("variants", []), *listed] if isinstance(v, dict)]
    name = raw.get("name", path.stem)
    folder = results or REPO_ROOT / (raw.get("results") or f"results/{name}")
    budget = dict(raw.get("budget", {}))
    if raw.get("param_budget") is not None:
        budget.pop("width", None)  # each run's width is the one that meets the parameter budget
    return SuiteScope(
        name=name, results_dir=folder,
        methods=None if methods == "all" else frozenset([*(m for m in methods if isinstance(m, str)), *variants]),
        datasets=labels,
        seeds=frozenset(int(s) for s in raw.get("seeds", [0])),
        training_conditions=frozenset(raw.get("training_conditions", ["standard"])),
        budget=budget, hparam_draws=int(raw.get("hparam_draws", 1)),
        baseline=raw.get("robustness_baseline", "late_fusion"), selection_rule=raw.get("selection_rule", "clean_val"),
        noninferiority_margin=noninferiority_margin(raw, path))
