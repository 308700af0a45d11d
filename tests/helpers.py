"""Small in-memory splits for unit tests."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.contracts import DatasetInfo, Modality, Split


def toy_info(n_classes: int = 3, img_shape: tuple[int, ...] = (1, 6, 5)) -> DatasetInfo:
    return DatasetInfo("toy", (Modality("a", "tabular", (4,)), Modality("b", "tabular", (3,)),
                               Modality("img", "image", img_shape)), n_classes)


def toy_split(n: int = 40, seed: int = 0, n_classes: int = 3, prefix: str = "s",
              img_shape: tuple[int, ...] = (1, 6, 5)) -> Split:
    g = torch.Generator().manual_seed(seed)
    info = toy_info(n_classes, img_shape)
    x = {m.name: torch.randn(n, *m.shape, generator=g) for m in info.modalities}
    y = torch.arange(n) % n_classes
    return Split(x=x, mask=torch.ones(n, len(x), dtype=torch.bool), y=y, labeled=torch.ones(n, dtype=torch.bool),
                 ids=np.array([f"{prefix}{i}" for i in range(n)]))
