"""Methods that attack the runner on purpose (issue 22's hostile submitters), for the containment tests."""

from __future__ import annotations

import torch

from benchmark.contracts import Method


class _Uniform(Method):
    def fit(self, train, val, ctx):
        pass

    def predict_proba(self, x, mask):
        return torch.full((mask.shape[0], self.info.n_classes), 1.0 / self.info.n_classes)


class MutatesInPredict(_Uniform):
    """Zeroes every modality it is shown, in place: without containment every later method is corrupted."""

    name = "mutates_in_predict"

    def predict_proba(self, x, mask):
        for m in x:
            x[m].mul_(0)
        mask.fill_(False)
        return super().predict_proba(x, mask)


class MutatesInFit(_Uniform):
    """Scrambles the training and validation splits it is given, in place."""

    name = "mutates_in_fit"

    def fit(self, train, val, ctx):
        for split in (train, val):
            for m in split.x:
                split.x[m].add_(1.0)
            split.y.zero_()


class Hangs(_Uniform):
    """A ``fit`` that never returns: without a time limit the sweep (and every resume of it) waits forever."""

    name = "hangs"

    def fit(self, train, val, ctx):
        import time

        while True:
            time.sleep(3600)


class Hog(_Uniform):
    """Allocates far beyond any test limit, 256 MB at a time (each page touched, so it is resident). Stops
    at 4 GB with an error, so a runner that fails to stop it fails the test instead of the machine."""

    name = "hog"

    def fit(self, train, val, ctx):
        held = []
        for _ in range(16):
            held.append(torch.ones(2**26))  # 256 MB of float32
        raise RuntimeError(f"allocated {len(held) * 256} MB and nobody stopped it")
