"""Image segmentation (UCI Statlog ``segment``): region geometry and edges against colour and intensity."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd

from benchmark.contracts import Modality
from benchmark.data import Dataset, DatasetCard, RawData, find_package_file

from ._packaged import encode_labels, require_version

INSTALL = "pip install --no-deps river==0.26.1"
GEOMETRY = ["region-centroid-col", "region-centroid-row", "short-line-density-5", "short-line-density-2",
            "vedge-mean", "vegde-sd", "hedge-mean", "hedge-sd"]
COLOUR = ["intensity-mean", "rawred-mean", "rawblue-mean", "rawgreen-mean", "exred-mean", "exblue-mean",
          "exgreen-mean", "value-mean", "saturation-mean", "hue-mean"]


class Segment(Dataset):
    """2310 3x3 regions of outdoor images in 7 classes (330 each)."""

    name = "segment"
    modalities = (Modality("geometry", "tabular", (8,)), Modality("colour", "tabular", (10,)))
    n_classes = 7
    card = DatasetCard(
        source="PyPI river 0.26.1, river/datasets/segment.csv.zip (UCI Statlog Image Segmentation)",
        package="river", version="0.26.1", file="datasets/segment.csv.zip",
        licence="data: CC BY 4.0 (UCI); as packaged: BSD-3-Clause (river)",
        citation="Brodley, C. (1990). Statlog (Image Segmentation) [Dataset]. UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C5P01G",
        modalities={"geometry": "8 region position, line-density and edge statistics",
                    "colour": "10 colour and intensity means (raw RGB, excess RGB, HSV)"},
        notes="Classes: the 7 category names in sorted order. Split: stratified 60/20/20, re-drawn per seed.",
        primary_metric="accuracy",
    )

    def build(self) -> RawData:
        require_version("river", "0.26.1", INSTALL)
        path = find_package_file("river", "datasets/segment.csv.zip", INSTALL)
        with zipfile.ZipFile(path) as z, z.open(z.namelist()[0]) as f:
            df = pd.read_csv(f)
        y, _ = encode_labels(df["category"])
        x = {"geometry": df[GEOMETRY].to_numpy(np.float64), "colour": df[COLOUR].to_numpy(np.float64)}
        return RawData(x=x, y=y, ids=np.array([f"segment-{i:04d}" for i in range(len(df))]), sources=[path])
