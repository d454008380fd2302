"""Typed network configuration with named presets, stored next to weights as JSON."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

AttentionKind = Literal["lsp", "dense", "none"]
ATTENTION_KINDS: tuple[str, ...] = ("lsp", "dense", "none")
SCALES: tuple[int, ...] = (2, 3, 4)


class ConfigError(ValueError):
    """A configuration that cannot describe a valid network (clear, user-facing message)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class LCoANConfig:
    """Everything needed to build an LCoAN-family network.

    attention: "lsp" = LCoAN (k-means sparse attention), "dense" = non-local baseline,
    "none" = plain residual backbone. share_pattern: CoA (one pattern for all groups);
    False gives the LSP-only ablation in which every group clusters and attends by itself.
    """

    scale: int = 2
    num_feat: int = 32
    num_groups: int = 4
    num_blocks: int = 4
    attention: AttentionKind = "lsp"
    share_pattern: bool = True
    num_clusters: int = 128
    window: int = 384
    rounds: int = 1
    match_reduction: int = 1
    ema_decay: float = 0.999
    freeze_centroids: bool = False
    kmeans_init_iters: int = 10
    attn_res_scale: float = 0.1
    group_res_scale: float = 0.1
    # Departures from the paper, off by default (see docs/attention_experiments.md):
    # logit_scale: a learnable scalar t, initialised at this value, multiplying the raw query, so
    #   scores are t * (q . k_hat) instead of q . k_hat (lets the softmax sharpen without growing |q|).
    # reseed_dead: k-means centroids whose running cluster size falls near zero are moved onto
    #   random embeddings of the current training batch (no dead clusters).
    logit_scale: float | None = None
    reseed_dead: bool = False
    rgb_mean: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)
    name: str = "custom"

    def __post_init__(self) -> None:
        # Types are checked too: a config.json from an untrusted checkpoint folder must be refused
        # here with a ConfigError, not fail later inside the network (or silently, e.g. "yes" as a bool).
        if not _is_int(self.scale) or self.scale not in SCALES:
            raise ConfigError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if not isinstance(self.attention, str) or self.attention not in ATTENTION_KINDS:
            raise ConfigError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        for key in ("num_feat", "num_groups", "num_blocks", "num_clusters", "window", "rounds",
                    "match_reduction"):
            value = getattr(self, key)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        if not _is_int(self.kmeans_init_iters) or self.kmeans_init_iters < 0:
            raise ConfigError(f"kmeans_init_iters must be a non-negative integer, got {self.kmeans_init_iters!r}")
        if self.logit_scale is not None and (not _is_finite_number(self.logit_scale) or self.logit_scale <= 0):
            raise ConfigError(f"logit_scale must be a positive number or null, got {self.logit_scale!r}")
        for key in ("share_pattern", "freeze_centroids", "reseed_dead"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        for key in ("ema_decay", "attn_res_scale", "group_res_scale"):
            if not _is_finite_number(getattr(self, key)):
                raise ConfigError(f"{key} must be a finite number, got {getattr(self, key)!r}")
        if not isinstance(self.name, str):
            raise ConfigError(f"name must be a string, got {self.name!r}")
        if self.num_feat % self.match_reduction:
            raise ConfigError("num_feat must be divisible by match_reduction")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if isinstance(self.rgb_mean, (str, bytes)) or not hasattr(self.rgb_mean, "__len__") \
                or len(self.rgb_mean) != 3 or not all(_is_finite_number(v) for v in self.rgb_mean):
            raise ConfigError(f"rgb_mean needs three finite numbers, got {self.rgb_mean!r}")
        object.__setattr__(self, "rgb_mean", tuple(float(v) for v in self.rgb_mean))

    @property
    def match_dim(self) -> int:
        """Channels of the match (similarity) embedding, C / r."""
        return self.num_feat // self.match_reduction

    def departures(self, short: bool = False) -> list[str]:
        """Where this config leaves the paper, in words (only flags that act on this attention kind);
        ``short``: a few words each, for tables."""
        out = []
        if self.attention != "none" and self.logit_scale is not None:
            out.append(f"logit scale (init {self.logit_scale:g})" if short else
                       f"a learnable logit scale multiplies the query (initialised at {self.logit_scale:g})")
        if self.attention != "none" and self.attn_res_scale != 0.1:
            out.append(f"branch x{self.attn_res_scale:g}" if short else
                       f"the attention branch is added with scale {self.attn_res_scale:g} (paper: 0.1)")
        if self.attention == "lsp" and self.reseed_dead:
            out.append("re-seeding" if short else
                       "k-means centroids whose running cluster size falls below 3% of the mean are re-seeded from "
                       "the batch")
        return out

    def replace(self, **changes: Any) -> LCoANConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["rgb_mean"] = list(self.rgb_mean)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LCoANConfig:
        """Build from a dict, refusing unknown keys (a typo must not be silently ignored)."""
        if not isinstance(data, dict):
            raise ConfigError("config must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        kwargs = dict(data)
        try:
            if isinstance(kwargs.get("rgb_mean"), list):
                kwargs["rgb_mean"] = tuple(kwargs["rgb_mean"])
            return cls(**kwargs)
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid config: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> LCoANConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config is not valid JSON: {exc}") from None
        return cls.from_dict(data)


PRESETS: dict[str, LCoANConfig] = {
    # The paper's reference configuration (its parameter count: the README's table, generated by
    # python -m scripts.param_table; the README says why it is below the paper's figure).
    "paper": LCoANConfig(num_feat=128, num_groups=10, num_blocks=4, num_clusters=128, window=384,
                         name="paper"),
    # What we train on a 2-core CPU: 32 channels, 4 groups x 4 blocks, same attention settings.
    "s": LCoANConfig(num_feat=32, num_groups=4, num_blocks=4, num_clusters=128, window=384, name="s"),
    # A middle size for machines with a GPU.
    "m": LCoANConfig(num_feat=64, num_groups=6, num_blocks=4, num_clusters=128, window=384, name="m"),
    # Tiny net for tests.
    "tiny": LCoANConfig(num_feat=8, num_groups=3, num_blocks=1, num_clusters=8, window=16,
                        kmeans_init_iters=3, name="tiny"),
}


def preset(name: str, **overrides: Any) -> LCoANConfig:
    """A named preset with optional field overrides, e.g. preset("s", scale=4, attention="dense")."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)
