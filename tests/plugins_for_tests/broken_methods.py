"""Methods that break the contract on purpose, for the runner's failure tests."""

from __future__ import annotations

import torch

from benchmark.contracts import Method


class RaisesInFit(Method):
    name = "raises_in_fit"

    def fit(self, train, val, ctx):
        raise RuntimeError("deliberate failure inside fit")

    def predict_proba(self, x, mask):
        raise AssertionError("never reached")


class ReturnsNaN(Method):
    name = "returns_nan"

    def fit(self, train, val, ctx):
        pass

    def predict_proba(self, x, mask):
        return torch.full((mask.shape[0], self.info.n_classes), float("nan"))


class WrongShape(Method):
    name = "wrong_shape"

    def fit(self, train, val, ctx):
        pass

    def predict_proba(self, x, mask):
        return torch.full((mask.shape[0], self.info.n_classes + 1), 1.0 / (self.info.n_classes + 1))
