"""The engine's version: part of every run id. Bump it when a change to the engine changes what a run
computes (``python -m benchmark verify`` re-runs committed records and tells when one was needed)."""

#: 0.1.0: the first engine; 0.2.0: run ids hash this version instead of the engine's sources, and records
#: carry their provenance and resolved conditions (record version 2); 0.3.0: seed k draws split k, validation
#: keeps only the labels its training condition keeps, balanced accuracy and AUROC recorded.
ENGINE_VERSION = "0.4.0"
