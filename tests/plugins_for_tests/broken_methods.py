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


class KillsItsWorker(Method):
    """Ends its process in the middle of fit, as a segfault or the kernel's OOM killer would. Only on a
    Dask worker: anywhere else it raises instead, so a serial sweep is not taken down with it."""

    name = "kills_its_worker"

    def fit(self, train, val, ctx):
        import os

        from distributed import get_worker

        try:
            get_worker()
        except ValueError:
            raise RuntimeError("kills_its_worker only kills Dask workers") from None
        os._exit(13)

    def predict_proba(self, x, mask):
        raise AssertionError("never reached")
