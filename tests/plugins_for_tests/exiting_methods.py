"""A method that ends its process during fit, as a segfault or os._exit would (test plug-in)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from benchmark.contracts import Method


class ExitsInFit(Method):
    name = "exits_in_fit"

    @dataclass(frozen=True)
    class Hparams:
        pass

    def __init__(self, info, hparams=None) -> None:
        self.info = info

    def fit(self, train, val, ctx) -> None:
        os._exit(13)

    def predict_proba(self, x, mask):
        raise AssertionError("never reached")
