"""Suites are TOML files (``benchmark/suites/NAME.toml``, or any path): which methods, datasets, seeds,
budget and condition grid a sweep covers. A suite's ``methods = "all"`` takes every registered method,
so a newly added method file joins the suite without editing it."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.isolation import RunLimits
from benchmark.paths import REPO_ROOT
from benchmark.suite_files import noninferiority_margin, suite_file

if TYPE_CHECKING:  # the protocols and contracts import torch; reading a suite's scope must not
    from benchmark.contracts import DatasetInfo, TrainBudget
    from benchmark.protocols import ResolvedCondition



@dataclass(frozen=True)
class MethodRow:
    """One row of a suite's leaderboard: a registered method, or a variant of it with overridden
    hyperparameters under its own label (``{name = "robult", modality_dropout = true, label =
    "robult+dropout"}``)."""

    name: str
    label: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def row(self) -> str:
        return self.label or self.name


@dataclass
class Suite:
    name: str
    description: str
    methods: list[str]
    datasets: list[str | dict[str, Any]]  # a name, or {name = "...", param = value, ...} for a variant
    seeds: list[int]
    budget: TrainBudget
    training_conditions: list[str] = field(default_factory=lambda: ["standard"])
    test_conditions: list[str] = field(default_factory=lambda: ["clean"])
    dataset_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The method that relative and effective robustness are measured against.
    robustness_baseline: str = "late_fusion"
    #: Hyperparameter draws per method (0 = the defaults, then seeded draws from each search space).
    hparam_draws: int = 1
    #: The model-selection rule the leaderboard uses (see benchmark.selection).
    selection_rule: str = "clean_val"
    #: Where its records and leaderboard go by default, relative to the checkout: ``results/NAME``, so
    #: running one suite never overwrites another's tables; the committed ``full`` suite says ``results``.
    results: str = ""
    #: Method variants: rows of their own beside their base method (``variants = [{name, label, ...}]``).
    variants: list[MethodRow] = field(default_factory=list)
    #: Match capacity: each method's width set per dataset so its parameter count is the closest to this.
    param_budget: int | None = None
    #: Each run's time and memory limits (``[limits] seconds = ..., memory_mb = ...``): a run past either is
    #: stopped and recorded as failed (``TimeLimit``, ``MemoryLimit``). Not part of a run's identity.
    limits: RunLimits = field(default_factory=RunLimits)
    #: The leaderboard's non-inferiority margin (a fraction: 0.01 = 1 point): a method gets the ✓ when shown
    #: no worse than the best by more than this. Not part of a run's identity.
    noninferiority_margin: float = 0.01

    def rows(self, only: list[str] | None = None) -> list[MethodRow]:
        """Every leaderboard row: each method with the suite's overrides, then each variant; ``only``
        narrows to rows whose label or method name it lists."""
        rows = [MethodRow(m) for m in self.methods] + list(self.variants)
        return [r for r in rows if not only or r.row in only or (not r.label and r.name in only)]

    @property
    def results_dir(self) -> Path:
        return REPO_ROOT / (self.results or f"results/{self.name}")

    def dataset_entries(self, only: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(dataset name, parameters) per entry; an entry can be a variant with its own parameters.
        ``only`` narrows to those names (a name not in the suite runs with its default parameters)."""
        entries = []
        for e in self.datasets:
            if isinstance(e, dict):
                params = {k: v for k, v in e.items() if k != "name"}
                entries.append((str(e["name"]), params))
            else:
                entries.append((e, dict(self.dataset_params.get(e, {}))))
        if only:
            names = {n for n, _ in entries}
            entries = [e for e in entries if e[0] in only] + [(n, dict(self.dataset_params.get(n, {})))
                                                              for n in only if n not in names]
        return entries

    def test_grid(self, info: DatasetInfo) -> list[ResolvedCondition]:
        """The test conditions for one dataset, ``*`` expanded and every parameter validated."""
        from benchmark.protocols import expand_conditions

        return expand_conditions(self.test_conditions, info, "test")

    def train_grid(self, info: DatasetInfo) -> list[ResolvedCondition]:
        from benchmark.protocols import expand_conditions

        return expand_conditions(self.training_conditions, info, "train")


def load_suite(name_or_path: str) -> Suite:
    from benchmark import registry
    from benchmark.contracts import TrainBudget
    from benchmark.protocols import check_syntax

    path = suite_file(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    known = {"name", "description", "methods", "datasets", "seeds", "budget", "training_conditions",
             "test_conditions", "dataset_params", "hparams", "robustness_baseline", "hparam_draws",
             "selection_rule", "results", "variants", "param_budget", "limits",
             "noninferiority_margin"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown suite key(s) {unknown}; allowed: {sorted(known)}")
    methods = raw.get("methods", "all")
    if methods == "all":
        methods = sorted(registry.methods())
    if not isinstance(methods, list) or not all(isinstance(m, str | dict) for m in methods):
        raise ValueError(f"{path}: methods must be \"all\" or a list of method names and variants, got {methods!r}")
    entries = [_variant(m, path) for m in [*methods, *raw.get("variants", [])] if isinstance(m, dict)]
    methods = [m for m in methods if isinstance(m, str)]
    for m in methods:
        registry.get("method", m)  # a KeyError naming the known methods
    labels = [*methods, *(e.label for e in entries)]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise ValueError(f"{path}: row label(s) {twice} appear twice; give each variant its own label")
    datasets = raw.get("datasets", "all")
    if datasets == "all":
        datasets = sorted(registry.datasets())
    if not isinstance(datasets, list) or not all(isinstance(e, str | dict) for e in datasets):
        raise ValueError(f"{path}: datasets must be \"all\" or a list of dataset names and variants, got {datasets!r}")
    for e in datasets:
        if isinstance(e, dict) and "name" not in e:
            raise ValueError(f"{path}: a dataset variant needs a name, e.g. {{name = \"synthetic_pid\", n = 500}}")
        registry.get("dataset", e["name"] if isinstance(e, dict) else e)  # a KeyError naming the known ones
    budget_fields = set(asdict(TrainBudget()))
    bad = sorted(set(raw.get("budget", {})) - budget_fields)
    if bad:
        raise ValueError(f"{path}: unknown budget key(s) {bad}; allowed: {sorted(budget_fields)}")
    _check_budget(raw.get("budget", {}), path)
    limits = _limits(raw.get("limits", {}), path)
    _check_seeds(raw.get("seeds", [0]), path)
    _check_name(raw.get("name", path.stem), path)
    for method, overrides in raw.get("hparams", {}).items():
        from benchmark.hparams import validate

        try:
            validate(registry.get("method", method).cls.Hparams, overrides, method)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: [hparams.{method}]: {exc}") from None
    for key, stage in (("training_conditions", "train"), ("test_conditions", "test")):
        value = raw.get(key, [])
        if not isinstance(value, list):
            raise ValueError(f"{path}: {key} must be a list of condition strings, got {value!r}")
        try:
            check_syntax(value, stage)
        except ValueError as exc:
            raise ValueError(f"{path}: {key}: {exc}") from None
    return Suite(
        name=raw.get("name", path.stem),
        description=raw.get("description", ""),
        methods=list(methods),
        datasets=list(datasets),
        seeds=[int(s) for s in raw.get("seeds", [0])],
        budget=TrainBudget(**raw.get("budget", {})),
        training_conditions=list(raw.get("training_conditions", ["standard"])),
        test_conditions=list(raw.get("test_conditions", ["clean"])),
        dataset_params=dict(raw.get("dataset_params", {})),
        hparams=dict(raw.get("hparams", {})),
        robustness_baseline=str(raw.get("robustness_baseline", "late_fusion")),
        hparam_draws=_positive_int(raw.get("hparam_draws", 1), "hparam_draws", path),
        selection_rule=_rule(raw.get("selection_rule", "clean_val"), path),
        results=_relative_folder(raw.get("results", ""), path),
        variants=entries,
        param_budget=None if raw.get("param_budget") is None else _positive_int(raw["param_budget"], "param_budget",
                                                                                path),
        limits=limits,
        noninferiority_margin=noninferiority_margin(raw, path),
    )


def _variant(entry: dict[str, Any], path: Path) -> MethodRow:
    """A variant row, its overrides validated against the method's hyperparameters before anything trains."""
    from benchmark import registry
    from benchmark.hparams import validate

    if "name" not in entry or "label" not in entry:
        raise ValueError(f"{path}: a method variant needs a name and a label, e.g. "
                         f"{{name = \"robult\", modality_dropout = true, label = \"robult+dropout\"}}; got {entry}")
    label = str(entry["label"])
    if not label or not all(c.isalnum() or c in "_+-." for c in label):
        raise ValueError(f"{path}: variant label {label!r} must be letters, digits and _ + - . only")
    overrides = {k: v for k, v in entry.items() if k not in ("name", "label")}
    plugin = registry.get("method", str(entry["name"]))
    try:
        validate(plugin.cls.Hparams, overrides, plugin.name)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: variant {label!r}: {exc}") from None
    return MethodRow(plugin.name, label, overrides)


#: What each budget value must be: (type, smallest allowed value, whether the bound is excluded).
BUDGET_RULES = {"max_epochs": (int, 1, False), "patience": (int, 0, False), "batch_size": (int, 1, False),
                "width": (int, 1, False), "lr": (float, 0.0, True), "weight_decay": (float, 0.0, False)}


def _check_budget(budget: dict[str, Any], path: Path) -> None:
    for key, value in budget.items():
        kind, low, open_ = BUDGET_RULES[key]
        number = isinstance(value, int | float) and not isinstance(value, bool) and (kind is float or
                                                                                  isinstance(value, int))
        if not number or value < low or (open_ and value == low):
            need = f"{'an integer' if kind is int else 'a number'} {'>' if open_ else '>='} {low:g}"
            raise ValueError(f"{path}: budget.{key} = {value!r}: must be {need}")


#: What each limit must be: (smallest allowed value, what it means). A run's process holds ~0.4 GB resident
#: before it trains (torch and the engine), so a memory limit below 256 MB could not hold any run.
LIMIT_RULES = {"seconds": (0.0, "seconds of wall time per run"), "memory_mb": (256.0, "MB of resident memory per run")}


def _limits(table: Any, path: Path) -> RunLimits:
    """``[limits]``: each run's wall time in seconds and resident memory in MB (the defaults where unset)."""
    if not isinstance(table, dict):
        raise ValueError(f"{path}: limits must be a table, e.g. [limits] seconds = 1800, memory_mb = 8192; "
                         f"got {table!r}")
    unknown = sorted(set(table) - set(LIMIT_RULES))
    if unknown:
        raise ValueError(f"{path}: unknown limits key(s) {unknown}; allowed: {sorted(LIMIT_RULES)}")
    for key, value in table.items():
        low, meaning = LIMIT_RULES[key]
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > low:
            raise ValueError(f"{path}: limits.{key} = {value!r}: must be a number > {low:g} ({meaning})")
    return RunLimits(**{k: float(v) for k, v in table.items()})


def _check_seeds(seeds: Any, path: Path) -> None:
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ValueError(f"{path}: seeds must be a non-empty list of non-negative integers, e.g. [0, 1, 2]; "
                         f"got {seeds!r}")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ValueError(f"{path}: seed(s) {twice} listed twice; each seed is one run")


def _check_name(name: Any, path: Path) -> None:
    """A suite's name names its results folder (``results/NAME``): a plain name, never a path."""
    plain = isinstance(name, str) and bool(name) and not name.startswith(".")
    if not plain or not all(c.isalnum() or c in "_-." for c in name):
        raise ValueError(f"{path}: name {name!r} must be letters, digits, _ - . (it names the folder results/NAME)")


def _positive_int(value: Any, key: str, path: Path) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{path}: {key} must be a positive integer, got {value!r}")
    return value


def _relative_folder(value: Any, path: Path) -> str:
    if not isinstance(value, str) or Path(value).is_absolute() or ".." in Path(value).parts:
        raise ValueError(f"{path}: results must be a folder inside the checkout, relative to it "
                         f"(e.g. \"results/my_suite\"), got {value!r}")
    return value


def _rule(value: Any, path: Path) -> str:
    from benchmark.selection import RULES

    if value not in RULES or RULES[value].reads_test:
        allowed = [k for k, r in RULES.items() if not r.reads_test]
        raise ValueError(f"{path}: selection_rule {value!r} is not allowed for a leaderboard; allowed: {allowed}")
    return str(value)
