"""A template dataset loader: copy it to datasets/my_dataset.py (or into a folder on
BENCHMARK_DATASETS_PATH) and replace ``build`` with the reading of your source files.

It serves scikit-learn's bundled digits (no download) as two modalities: the left and the right half of
each 8x8 image."""

from __future__ import annotations

import numpy as np

from benchmark.contracts import Modality
from benchmark.data import Dataset, DatasetCard, RawData


class MyDataset(Dataset):
    """Handwritten digits, left and right image halves as two modalities (1797 samples, 10 classes)."""

    name = "my_dataset"  # the registry key, used in suite files
    modalities = (Modality("left", "tabular", (32,)), Modality("right", "tabular", (32,)))
    n_classes = 10
    card = DatasetCard(
        source="PyPI scikit-learn, sklearn/datasets/data/digits.csv.gz (UCI Optical Recognition of Digits)",
        package="scikit-learn", version="", file="datasets/data/digits.csv.gz",
        licence="CC BY 4.0", citation="Alpaydin, Kaynak (1998). Optical Recognition of Handwritten Digits. UCI.",
        modalities={"left": "columns 0-3 of each 8x8 image", "right": "columns 4-7 of each 8x8 image"},
        primary_metric="accuracy",  # "balanced_accuracy" where the majority class exceeds 80%
    )

    def build(self) -> RawData:
        """Read the source once; the suite stores the arrays with their checksum and draws each seed's
        stratified train / validation / test split from them (set ``official_test = True`` and return
        ``split`` to keep a source's own test set)."""
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = digits.images.astype(np.float64)  # (n, 8, 8)
        n = len(images)
        x = {"left": images[:, :, :4].reshape(n, -1), "right": images[:, :, 4:].reshape(n, -1)}
        ids = np.array([f"digits-{i}" for i in range(n)])  # unique and stable: protocols key their draws on them
        return RawData(x=x, y=digits.target.astype(np.int64), ids=ids)
