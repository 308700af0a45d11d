"""One run: train once, then evaluate the trained model on every test condition of its suite.

Everything a run computes is here; the sweep around it (planning, resume, progress) is in ``sweep``.
A method that raises, returns NaN or returns the wrong shape gives a ``failed`` record with its error.
"""

from __future__ import annotations

import hashlib
import math
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmark.contracts import Method, Split, TrainBudget, TrainContext, hparams_from_dict, hparams_to_dict
from benchmark.cost import inference_flops_per_sample
from benchmark.data import Prepared
from benchmark.environment import describe
from benchmark.metrics import all_metrics, reliability_bins
from benchmark.protocols import ResolvedCondition
from benchmark.records import RunSpec
from benchmark.seeding import set_determinism
from benchmark.timing import Clock, MemoryMeter

#: Rows of predicted probabilities must sum to 1 within this tolerance.
PROBA_TOLERANCE = 1e-4
#: Untimed calls before inference is timed on CUDA (kernel selection, lazy initialisation).
CUDA_WARMUP_CALLS = 2
#: Families whose worst condition is "the strongest shift" of the reliability diagram.
SHIFT_FAMILIES = ("noise", "covariate", "correlation")
#: Timed inference calls on the clean test split; the record keeps their median.
INFERENCE_REPEATS = 3


@dataclass(frozen=True)
class RunConditions:
    """The run's resolved training condition and test grid (resolved once, when the suite is planned)."""

    train: ResolvedCondition
    tests: tuple[ResolvedCondition, ...]

    def to_json(self) -> dict[str, Any]:
        return {"train": [self.train.key, self.train.to_json()], "tests": [[c.key, c.to_json()] for c in self.tests]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunConditions:
        return cls(ResolvedCondition.from_json(*d["train"]),
                   tuple(ResolvedCondition.from_json(k, c) for k, c in d["tests"]))


class InvalidPrediction(ValueError):
    """predict_proba broke the contract (shape, finite values, rows that sum to one)."""


class MutatedInputs(ValueError):
    """A method changed the tensors it was handed (inputs are read-only by contract)."""


def split_hash(split: Split) -> str:
    """sha256 of a split's inputs, mask and labels: to check that ``fit`` left them as they were."""
    h = hashlib.sha256(input_hash(split).encode())
    h.update(np.ascontiguousarray(split.y.cpu().numpy()).tobytes())
    h.update(np.ascontiguousarray(split.labeled.cpu().numpy()).tobytes())
    return h.hexdigest()


def check_proba(proba: Any, n: int, n_classes: int) -> np.ndarray:
    if not isinstance(proba, torch.Tensor):
        raise InvalidPrediction(f"predict_proba must return a torch.Tensor, got {type(proba).__name__}")
    if tuple(proba.shape) != (n, n_classes):
        raise InvalidPrediction(f"predict_proba returned shape {tuple(proba.shape)}, expected ({n}, {n_classes})")
    p = proba.detach().double().cpu().numpy()
    if not np.isfinite(p).all():
        raise InvalidPrediction(f"predict_proba returned {int((~np.isfinite(p)).sum())} non-finite values")
    if (p < -PROBA_TOLERANCE).any() or np.abs(p.sum(axis=1) - 1).max() > PROBA_TOLERANCE:
        raise InvalidPrediction("predict_proba rows must be non-negative and sum to 1")
    return np.clip(p, 0.0, 1.0)


def input_hash(view: Split) -> str:
    """sha256 of exactly what a method is shown: each modality's values (in order) and the mask."""
    h = hashlib.sha256()
    for name, v in view.x.items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(v.detach().cpu().numpy()).tobytes())
    h.update(np.ascontiguousarray(view.mask.cpu().numpy()).tobytes())
    return h.hexdigest()


def _predict(method: Method, split: Split) -> torch.Tensor:
    view = split.without_labels().copy()
    return method.predict_proba(view.x, view.mask)


def predict_checked(method: Method, view: Split, expected: str, where: str) -> torch.Tensor:
    """``predict_proba`` on a copy of ``view``, then a check that the copy still hashes to ``expected``:
    the copy keeps the shared inputs safe, the check names a method that edits its inputs in place."""
    mine = view.copy()
    proba = method.predict_proba(mine.x, mine.mask)
    if input_hash(mine) != expected:
        raise MutatedInputs(f"predict_proba changed the inputs it was given ({where}); inputs are read-only: "
                            "work on a copy (e.g. x[m].clone()) instead of editing x or mask in place")
    return proba


def execute(spec: RunSpec, method_cls: type[Method], data: Prepared, device: torch.device,
            conditions: RunConditions, threads: int = 1) -> dict[str, Any]:
    """Run ``spec`` under its resolved ``conditions`` and return the body of its record (status, metrics,
    timings, memory, cost)."""
    started = time.time()
    body: dict[str, Any] = {"spec": spec.to_json(), "status": "running"}
    clock, meter = Clock(device), MemoryMeter(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(spec.seed)
            set_determinism(threads)
            body.update(_train_and_evaluate(spec, method_cls, data, device, conditions, clock, meter))
        body["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure of a method is recorded, never raised
        body["status"] = "failed"
        body["error"] = {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
    body["environment"] = describe(device)
    body["clock"] = clock.name
    body["memory_meter"] = meter.name
    body["wall_seconds"] = time.time() - started
    return body


def _validation_metrics(method: Method, val: Split, train_cond: ResolvedCondition, seed: int,
                        n_classes: int) -> dict[str, dict[str, float]]:
    """Validation scores for model selection, on the validation labels the training condition keeps (under
    ``labels[f]`` the same fraction as in training): the validation split as the method saw it, and under
    the run's own training condition (what the method could see while training). Never a test condition."""

    def scores(split: Split) -> dict[str, float]:
        proba = check_proba(_predict(method, split), len(split), n_classes)
        keep = split.labeled.cpu().numpy() & (split.y.cpu().numpy() >= 0)
        return all_metrics(proba[keep], split.y.cpu().numpy()[keep])

    clean = scores(val)
    if train_cond.family in ("standard", "labels"):
        return {"clean": clean, "train_condition": clean}
    return {"clean": clean, "train_condition": scores(train_cond.apply(val, seed))}


def score_method_extras(arrays: dict[str, dict[str, Any]], y: np.ndarray) -> dict[str, Any]:
    """Score a method's per-sample ``evaluate_extras(x, mask)`` arrays against labels it never saw:
    kind "accuracy_by_column" (``pred`` (n, C): accuracy per column, e.g. accuracy against q), kind
    "interval_coverage" (``value_by_label`` (n, K, C), ``lower`` / ``upper`` (n, C): the share of samples
    whose value at their true label lies in its interval) and kind "label_free" (``values``: summaries that
    need no label, e.g. how often a selection abstains, recorded as given with numpy values made plain)."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): plain(u) for k, u in v.items()}
        if isinstance(v, list | tuple):
            return [plain(u) for u in v]
        if isinstance(v, np.ndarray | np.generic):
            return plain(v.tolist())
        return v

    out: dict[str, Any] = {}
    for name, item in arrays.items():
        if item.get("kind") == "accuracy_by_column":
            pred = np.asarray(item["pred"])
            out[name] = {"columns": list(item["columns"]),
                         "accuracy": [float(a) for a in (pred == y[:, None]).mean(axis=0)]}
        elif item.get("kind") == "interval_coverage":
            value = np.asarray(item["value_by_label"])[np.arange(len(y)), y]
            covered = (np.asarray(item["lower"]) <= value) & (value <= np.asarray(item["upper"]))
            out[name] = {"columns": list(item["columns"]), "coverage": [float(c) for c in covered.mean(axis=0)]}
        elif item.get("kind") == "label_free":
            out[name] = plain(item["values"])
    return out


def _train_and_evaluate(spec: RunSpec, method_cls: type[Method], data: Prepared, device: torch.device,
                        conditions: RunConditions, clock: Clock, meter: MemoryMeter) -> dict[str, Any]:
    budget = TrainBudget(**spec.budget)
    hparams = hparams_from_dict(method_cls.Hparams, spec.hparams, spec.method)
    train_cond = conditions.train
    splits = data.splits_for(spec.seed)  # seed k draws split k, shared by every run of this process: copied
    train = train_cond.apply(splits["train"], spec.seed).to(device).copy()
    val = train_cond.apply_validation(splits["val"], spec.seed).to(device).copy()
    test = splits["test"].to(device)
    before_fit = (split_hash(train), split_hash(val))
    method = method_cls(data.info, hparams)
    ctx = TrainContext.from_seed(spec.seed, budget, device, clock)

    with meter.phase() as fit_mem:
        t0 = clock.start()
        method.fit(train, val, ctx)
        fit_seconds = clock.stop(t0)
    if (split_hash(train), split_hash(val)) != before_fit:
        raise MutatedInputs("fit changed the training or validation split it was given; splits are read-only: "
                            "work on copies (e.g. x[m].clone()) instead of editing them in place")

    val_metrics = _validation_metrics(method, val, train_cond, spec.seed, data.info.n_classes)
    metrics: dict[str, dict[str, Any]] = {}
    input_hashes: dict[str, str] = {}
    reliability: dict[str, Any] = {}
    worst_shift = ("", math.inf)
    with meter.phase() as eval_mem:
        for cond in conditions.tests:
            key = cond.key
            shifted = cond.apply(test, spec.seed)
            view = shifted.without_labels()
            input_hashes[key] = input_hash(view)
            proba = check_proba(predict_checked(method, view, input_hashes[key], f"condition {key}"), len(shifted),
                                data.info.n_classes)
            metrics[key] = {**all_metrics(proba, shifted.y.cpu().numpy()), "family": cond.family,
                            "protocol": cond.protocol, "severity": cond.severity}
            if key == "clean":
                reliability["clean"] = reliability_bins(proba, shifted.y.cpu().numpy())
            elif cond.family in SHIFT_FAMILIES and metrics[key]["accuracy"] < worst_shift[1]:
                worst_shift = (key, metrics[key]["accuracy"])
                reliability["strongest_shift"] = {"condition": key,
                                                  **reliability_bins(proba, shifted.y.cpu().numpy())}

    # Label-dependent diagnostics of a method (interval coverage, accuracy against q) on the clean test
    # split: the method returns per-sample arrays without seeing y, and the runner scores them.
    extras_test: dict[str, Any] = {}
    if callable(getattr(method, "evaluate_extras", None)):
        view = test.without_labels().copy()
        extras_test = score_method_extras(method.evaluate_extras(view.x, view.mask), test.y.cpu().numpy())

    with meter.phase() as infer_mem:
        view = test.without_labels().copy()  # copied once, outside the timed calls
        if clock.cuda:
            for _ in range(CUDA_WARMUP_CALLS):
                method.predict_proba(view.x, view.mask)
        samples = []
        for _ in range(INFERENCE_REPEATS):
            t0 = clock.start()
            method.predict_proba(view.x, view.mask)
            samples.append(clock.stop(t0))
        infer_seconds = float(np.median(samples))

    return {
        "hparams": hparams_to_dict(hparams),
        "metrics": metrics,
        "conditions": {c.key: c.to_json() for c in conditions.tests},
        "train_condition_resolved": train_cond.to_json(),
        "val_metrics": val_metrics,
        "reliability": reliability,
        "input_sha256": input_hashes,
        "timings": {
            "fit_seconds": fit_seconds,
            "epoch_seconds": [e.get("seconds", math.nan) for e in ctx.epoch_log],
            "inference_seconds_per_sample": infer_seconds / max(len(test), 1),
            "inference_batch": len(test),
        },
        "memory_mb": {"fit": fit_mem.peak_mb, "evaluate": eval_mem.peak_mb, "inference": infer_mem.peak_mb},
        "n_parameters": method.n_parameters(),
        "flops": {"inference_per_sample": inference_flops_per_sample(method, test.x, test.mask),
                  "train_per_step": ctx.fit_summary.get("train_flops_per_step"),
                  "train_estimate": ctx.fit_summary.get("train_flops_estimate")},
        "fit_summary": ctx.fit_summary,
        "epoch_log": ctx.epoch_log,
        "n_train_labeled": int(train.labeled.sum()),
        "n_val_labeled": int(val.labeled.sum()),
        "extras": method.extras(),
        "extras_test": extras_test,
    }

