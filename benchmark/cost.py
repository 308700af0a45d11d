"""Model cost: parameter count (from the method) and FLOPs from PyTorch's own flop counter."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.contracts import Method

#: Samples used to count inference FLOPs (the count is divided by it).
FLOP_SAMPLES = 32


def inference_flops_per_sample(method: Method, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> float:
    """FLOPs of one ``predict_proba`` call per sample, counted by ``FlopCounterMode`` (matmuls and
    convolutions; element-wise work is not counted, as in PyTorch's counter)."""
    n = min(FLOP_SAMPLES, mask.shape[0])
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        method.predict_proba({k: v[:n] for k, v in x.items()}, mask[:n])
    return counter.get_total_flops() / max(n, 1)
