"""A template test protocol: copy it to benchmark/protocols/my_protocol.py and add ``Dropout()`` to
``PROTOCOLS`` in benchmark/protocols/__init__.py (protocols are part of the engine: every run id hashes
the version of each protocol in its grid).

A protocol is a pure function of (split, parameters, seed): its randomness comes from ``self.uniforms`` /
``self.normals``, keyed on (protocol, version, parameters, seed, sample id), so every method sees
byte-identical inputs and adding samples leaves the others' draws unchanged."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.contracts import Split
from benchmark.protocols.base import Arg, Param, Protocol


class Dropout(Protocol):
    """Each feature of one modality set to 0 (the training mean) with probability ``rate``."""

    name = "feature_dropout"  # written in suites as feature_dropout[modality,rate]
    version = 1  # bump when what apply() computes changes: runs using it get new run ids
    family = "noise"  # the leaderboard's robustness family
    params = (Param("modality", "modality"), Param("rate", "rate", (0.1, 0.3, 0.5)))
    severity_param = "rate"  # the x axis of its robustness curve

    def apply(self, split: Split, args: tuple[Arg, ...], seed: int) -> Split:
        name, rate = str(args[0]), float(args[1])
        v = split.x[name].cpu().numpy()
        keep = np.stack([self.uniforms(split, args, seed, "feature", j) for j in range(v[0].size)], 1) >= rate
        x = dict(split.x)  # never edit the split in place: return a new one
        x[name] = torch.from_numpy(np.ascontiguousarray(v * keep.reshape(v.shape), dtype=np.float32))
        return split.with_inputs(x, split.mask)
