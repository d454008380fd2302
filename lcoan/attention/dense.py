"""Dense non-local attention (the NLA baseline): every position attends to every other, O(N^2).

Uses the same score rule as LSP (raw query . normalised key, no scaling) so that LSP with one
window covering everything equals this block exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import LCoANConfig
from .embed import make_log_scale, query_key


def dense_attention(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Fused softmax(q k^T) v via scaled_dot_product_attention. (B, N, D), (B, N, D), (B, N, C) -> (B, N, C)."""
    out = F.scaled_dot_product_attention(query.contiguous()[:, None], key.contiguous()[:, None],
                                         value.contiguous()[:, None], scale=1.0)
    return out[:, 0]


def dense_attention_naive(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """The classic non-local block: matmul, softmax, matmul (materialises the N x N matrix)."""
    return torch.softmax(query @ key.transpose(-1, -2), dim=-1) @ value


class DenseNonLocal(nn.Module):
    """A non-local block with its own match (3x3, C -> C/r) and assembly (1x1, C -> C) embeddings.

    forward(x: (B, C, H, W)) -> (B, C, H, W).
    """

    def __init__(self, cfg: LCoANConfig, naive: bool = False) -> None:
        super().__init__()
        self.match = nn.Conv2d(cfg.num_feat, cfg.match_dim, 3, padding=1)
        self.value = nn.Conv2d(cfg.num_feat, cfg.num_feat, 1)
        self.log_scale = make_log_scale(cfg.logit_scale)
        self.naive = naive

    def embed(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, C, H, W) -> query (B, N, D), normalised key (B, N, D), value (B, N, C)."""
        query, key = query_key(self.match, self.log_scale, x)
        query, key = query.contiguous(), key.contiguous()
        value = self.value(x).flatten(2).transpose(1, 2).contiguous()
        return query, key, value

    def attend(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        return (dense_attention_naive if self.naive else dense_attention)(query, key, value)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        out = self.attend(*self.embed(x))
        return out.transpose(1, 2).reshape(b, c, h, w)
