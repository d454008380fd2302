"""LCoAN: Efficient Learnable Collaborative Attention for single-image super-resolution.

A PyTorch implementation of Chen et al., arXiv:2404.04922: Learnable Sparse Pattern (k-means
sparse attention) + Collaborative Attention (one pattern shared by all residual groups), with a
dense non-local baseline, checkpoints, tiled inference and a tracing API.
"""
from .checkpoint import CheckpointError, load, save
from .config import PRESETS, ConfigError, LCoANConfig, preset
from .inference import upscale
from .introspect.trace import Trace
from .network import LCoAN, create_model

__all__ = ["LCoAN", "LCoANConfig", "PRESETS", "preset", "create_model", "load", "save", "upscale",
           "Trace", "CheckpointError", "ConfigError"]
