"""``python -m benchmark check-method PATH``: the conformance suite a method file must pass before it
joins the leaderboard. Each check prints PASS or FAIL with the reason:

contract (name, Hparams with defaults, fit / predict_proba that takes no labels), a time-bounded smoke
run, valid probabilities, invariance to the values behind the mask, determinism given the seed,
training without the labels it is not given (unlabelled samples carry y = -1), and no access to labels it
must not see (``benchmark.leakage``: a run on data whose labels are independent of the inputs)."""

from __future__ import annotations

import dataclasses
import inspect
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark import registry
from benchmark.contracts import Method, TrainBudget, TrainContext
from benchmark.execution import check_proba, input_hash, predict_checked, split_hash
from benchmark.hparams import validate
from benchmark.protocols import expand_conditions
from benchmark.seeding import set_determinism

#: The smoke run: a small synthetic set and a short budget.
SMOKE_DATA = {"n": 400}
SMOKE_BUDGET = TrainBudget(max_epochs=3, patience=2, batch_size=64, width=16)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


class TimeLimit(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def handler(signum, frame):  # noqa: ARG001
        raise TimeLimit(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _fit(cls: type[Method], data, seed: int, train=None, val=None) -> Method:
    splits = data.splits_for(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        set_determinism(1)
        method = cls(data.info, cls.Hparams())
        ctx = TrainContext.from_seed(seed, SMOKE_BUDGET)
        # Copies: a method that edits its splits must not change what the next check sees.
        method.fit(train if train is not None else splits["train"].copy(),
                   val if val is not None else splits["val"].copy(), ctx)
    return method


def check_class(cls: type[Method], seconds: int) -> list[Check]:
    checks: list[Check] = []

    def run(name: str, fn: Callable[[], str | None]) -> bool:
        try:
            with time_limit(seconds):
                detail = fn() or ""
            checks.append(Check(name, True, detail))
            return True
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is raised
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc} (at {Path(tb.filename).name}:{tb.lineno})"))
            return False

    def contract() -> str:
        assert isinstance(cls.name, str) and cls.name, "set a non-empty class attribute `name`"
        assert dataclasses.is_dataclass(cls.Hparams), "Hparams must be a dataclass"
        validate(cls.Hparams, cls.Hparams(), cls.name)  # every field needs a default its declaration allows
        params = list(inspect.signature(cls.predict_proba).parameters)[1:]
        assert params == ["x", "mask"], f"predict_proba must take (x, mask) and nothing else (labels), has {params}"
        return f"Hparams fields: {[f.name for f in dataclasses.fields(cls.Hparams)]}"

    if not run("contract", contract):
        return checks
    data = registry.get("dataset", "synthetic_pid").cls(**SMOKE_DATA).load()
    reference = data.splits_for(0)["test"].without_labels().copy()
    test = reference.copy()
    state: dict[str, Method] = {}

    def smoke() -> str:
        t0 = time.perf_counter()
        state["a"] = _fit(cls, data, seed=0)
        return f"fit in {time.perf_counter() - t0:.1f} s (limit {seconds} s)"

    if not run("smoke run", smoke):
        return checks
    method = state["a"]

    def probabilities() -> None:
        view = test.copy()
        check_proba(method.predict_proba(view.x, view.mask), len(view), data.info.n_classes)

    def inputs_untouched() -> str:
        splits = data.splits_for(0)
        train, val = splits["train"].copy(), splits["val"].copy()
        before = (split_hash(train), split_hash(val))
        fitted = _fit(cls, data, seed=0, train=train, val=val)
        assert (split_hash(train), split_hash(val)) == before, (
            "fit changed the training or validation split it was given; work on copies instead")
        predict_checked(fitted, reference, input_hash(reference), "the clean test split")
        return "fit and predict_proba leave the tensors they are given as they were"

    def mask_invariance() -> str:
        mask = test.mask.clone()
        mask[::2, 0] = False
        mask[1::3, 1] = False
        zeroed = test.with_inputs(test.x, mask).x
        noisy = {k: v.clone() for k, v in zeroed.items()}
        g = torch.Generator().manual_seed(1)
        for j, k in enumerate(noisy):
            hidden = ~mask[:, j]
            noisy[k][hidden] = torch.randn(noisy[k][hidden].shape, generator=g) * 100
        a, b = method.predict_proba(zeroed, mask), method.predict_proba(noisy, mask)
        diff = float((a - b).abs().max())
        assert diff == 0.0, f"the output changed by {diff:.3g} when only values behind the mask changed"
        return "identical output whatever the masked values hold"

    def determinism() -> str:
        again = _fit(cls, data, seed=0)
        diff = float((method.predict_proba(test.x, test.mask) - again.predict_proba(test.x, test.mask)).abs().max())
        assert diff == 0.0, (f"two fits with seed 0 differ by {diff:.3g}; draw randomness only from ctx.generator "
                             "or generators seeded from ctx.seed")
        return "two fits with the same seed give identical predictions"

    def without_labels() -> str:
        (scarce,) = expand_conditions(["labels[0.5]"], data.info, "train")
        splits = data.splits_for(0)
        train, val = scarce.apply(splits["train"], 0), scarce.apply_validation(splits["val"], 0)
        fitted = _fit(cls, data, seed=0, train=train, val=val)
        check_proba(fitted.predict_proba(test.x, test.mask), len(test), data.info.n_classes)
        return (f"trains with {int(train.labeled.sum())}/{len(train)} training and {int(val.labeled.sum())}/"
                f"{len(val)} validation labels (the others are y = -1)")

    def no_leak() -> str:
        from benchmark.leakage import leakage_check

        r = leakage_check(cls)
        assert r.status == "ok", f"the run on null-label data failed: {r.error}"
        assert not r.leaks, (
            f"reads labels it must not see: {r.accuracy:.1%} test accuracy on data whose labels are independent "
            f"of the inputs (chance {r.chance:.1%}; an honest method exceeds {r.bound:.1%} with probability "
            "1e-4); predict only from x and mask, never from splits, datasets or objects found elsewhere")
        return (f"{r.accuracy:.1%} on labels independent of the inputs ({r.n_test} test samples; chance "
                f"{r.chance:.1%}, bound {r.bound:.1%})")

    run("inputs left as they were", inputs_untouched)
    run("valid probabilities", probabilities)
    run("invariance to values behind the mask", mask_invariance)
    run("determinism given the seed", determinism)
    run("never needs labels it is not given", without_labels)
    run("no access to labels it must not see", no_leak)
    return checks


def check_file(path: Path, seconds: int = 120) -> dict[str, list[Check]]:
    names = registry.add_method_file(path)
    if not names:
        raise ValueError(f"{path} defines no Method subclass with a `name`; see the README's 'Submit a method'")
    return {name: check_class(registry.get("method", name).cls, seconds) for name in names}
