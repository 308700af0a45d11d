"""A method whose predictions depend on Python's global, unseeded random state (test plug-in)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from benchmark.contracts import Method


class Nondeterministic(Method):
    name = "nondeterministic"

    @dataclass(frozen=True)
    class Hparams:
        pass

    def __init__(self, info, hparams=None) -> None:
        self.info = info

    def fit(self, train, val, ctx) -> None:
        self.bias = random.random()  # noqa: S311 - the point: randomness the seed does not fix

    def predict_proba(self, x, mask):
        logits = torch.zeros(len(mask), self.info.n_classes)
        logits[:, 0] = self.bias
        return torch.softmax(logits, dim=1)
