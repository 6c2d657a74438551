"""DLFA Explorer: double-layer feature aggregation (Chen et al., arXiv 2205.08497) for zero-shot
cross-lingual transfer, as a library. See README.md."""

__version__ = "0.1.0"
