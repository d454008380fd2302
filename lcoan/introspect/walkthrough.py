"""LSP and CoA step by step on one traced image: the tensors of each of the eight steps, with captions
that give their shapes. Pure computation on a :class:`~.trace.Trace` of an LSP model; the pictures are
drawn elsewhere (the app's views).

The steps, for the query at ``position`` (N = H * W positions of the LR feature map, D match channels,
K centroids, W the window, G residual groups, C feature channels):

1. match embeddings: key k = unit(conv3x3(x)) (N, D), shown as its first three principal components;
2. the nearest centroid: codes (N,) = argmax over the K centroids of k . mu, and that cosine;
3. the sequence sorted by cluster: order (N,), a stable argsort of the codes;
4. the windows of W: rank // W, nW = ceil(N / W) windows, each query sees windows i-1, i, i+1 (3W keys);
5. one query's window and its neighbours on the image: roles (N,) (unseen / previous / own / next);
6. its softmax weights over those keys: row (N,), the top matches and where the mass goes;
7. CoA: the same weights in every group, each with its own values: w * |v_g| (G, N);
8. dense attention on the same query (softmax over all N keys, same embeddings) and the recall.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .query import QueryAttention, far_reaching_query, query_attention
from .trace import Trace

TITLES = ("Match embeddings", "Nearest centroid", "Sorted by cluster", "Windows of W",
          "The query's window and its neighbours", "Its softmax weights",
          "CoA: the same weights in every group", "Dense attention on the same query, and recall")
ROLE_NAMES = ("never seen", "previous window", "own window", "next window")


@dataclass(frozen=True)
class Step:
    """One step: a title and two lines of text (the second names the tensor shapes)."""

    title: str
    what: str
    shapes: str

    def caption(self, number: int) -> str:
        return f"{number}. {self.title}\n{self.what}\n{self.shapes}"


@dataclass(frozen=True)
class Walkthrough:
    """The tensors of the eight steps for one query (all (N,) in raster order of the (H, W) map unless
    noted): embedding_rgb (N, 3) in [0, 1]; codes, cosine; order (N,) sorted position -> position;
    window_of (N,) window index of each position; roles (N,) int64 in 0..3 (:data:`ROLE_NAMES`);
    lsp: the query's LSP attention; contributions (G, N) = w * |v_g|; dense_row (N,); recall of this
    query; recall_mean over sampled queries; steps: the eight captions."""

    lr_size: tuple[int, int]
    position: int
    window: int
    num_clusters: int
    embedding_rgb: Tensor
    codes: Tensor
    cosine: Tensor
    order: Tensor
    window_of: Tensor
    roles: Tensor
    lsp: QueryAttention
    contributions: Tensor
    dense_row: Tensor
    recall_mean: float
    steps: tuple[Step, ...]

    @property
    def n(self) -> int:
        return self.lr_size[0] * self.lr_size[1]

    @property
    def num_windows(self) -> int:
        return -(-self.n // self.window)

    def captions(self) -> list[str]:
        return [s.caption(i + 1) for i, s in enumerate(self.steps)]


def pca_rgb(x: Tensor) -> Tensor:
    """(N, D) -> (N, 3) in [0, 1]: the first three principal components, each scaled by its 1st..99th
    percentile (D < 3 pads with grey)."""
    x = x.double() - x.double().mean(0)
    cov = x.T @ x / max(1, x.shape[0] - 1)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    comps = x @ vecs[:, -3:].flip(-1)
    if comps.shape[1] < 3:
        comps = torch.cat([comps, torch.zeros(x.shape[0], 3 - comps.shape[1], dtype=comps.dtype)], 1)
    lo = torch.quantile(comps, 0.01, dim=0)
    hi = torch.quantile(comps, 0.99, dim=0)
    return ((comps - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1).float()


def roles_of(trace: Trace, position: int) -> Tensor:
    """(N,) role of every position for this query: 0 never seen, 1 previous, 2 own, 3 next window."""
    p = trace.pattern_for(0)
    win = p.rank[0] // p.window
    delta = win - p.window_of(position)
    roles = torch.zeros(p.n, dtype=torch.long)
    for d, role in ((-1, 1), (0, 2), (1, 3)):
        roles[delta == d] = role
    return roles


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def captions(t: Trace, q: QueryAttention, codes: Tensor, cosine: Tensor, window: int, recall_mean: float,
             dense_row: Tensor) -> tuple[Step, ...]:
    """The eight steps' text (each: what it shows, then the tensor shapes)."""
    p = t.pattern_for(0)
    (h, w), n, d, k = t.lr_size, t.n, p.key.shape[1], p.centroids.shape[1]
    c, g = t.groups[0].value.shape[1], len(t.groups)
    nw = -(-n // window)
    y, x = q.query
    occupied = int((torch.bincount(codes, minlength=k) > 0).sum())
    mass = q.mass
    far = dense_row.clone()
    far[q.position] = 0
    return (
        Step(TITLES[0], "Group 1's features go through the 3x3 match conv; each position's key is that vector "
             "made unit length. Colour = its first three principal components: alike colours, alike keys.",
             f"features (1, C={c}, H={h}, W={w}) -> query q (N={n:,}, D={d}); key k = q/|q| (N, D)."),
        Step(TITLES[1], f"Each key joins the centroid it is most similar to (cosine); {occupied} of {k} clusters "
             f"are used on this image. Colour = cluster; brightness = that cosine (mean {float(cosine.mean()):.2f}).",
             f"k (N, D) . centroids (K={k}, D={d}) -> scores (N, K) -> codes = argmax (N,) int64."),
        Step(TITLES[2], "A stable sort by cluster id lines up the members of each cluster, wherever they are "
             f"in the image. Shown: the sorted sequence wrapped in rows of W={window}, pixel colour above its "
             "cluster colour.", f"codes (N={n:,},) -> order = argsort(codes, stable) (N,); sorted[i] = x[order[i]]."),
        Step(TITLES[3], f"The sorted sequence is cut into {nw} windows of W={window} (the tail padded); window i "
             f"attends to windows i-1, i, i+1. Colour = each position's window, on the image.",
             f"(N,) -> (nW={nw}, W={window}) queries, (nW, 3W={3 * window}) key slots per window."),
        Step(TITLES[4], f"The query (row {y}, col {x}) sits in window {p.window_of(q.position) + 1} of {nw}; it "
             f"sees only its own and the two neighbouring windows: {q.keys:,} keys ({q.keys / n:.1%} of N).",
             f"rank[query] // W -> window i; keys = order[(i-1)W : (i+2)W] -> ({q.keys:,},) of N={n:,}."),
        Step(TITLES[5], f"Softmax of q . k over those keys. Self-weight {q.self_weight:.3f} (cyan box); top "
             f"{len(q.top)} other keys outlined. Mass: self {_pct(mass.self)}, 3x3 {_pct(mass.neighbours)}, "
             f"within RF (r={mass.radius}) {_pct(mass.within_rf)}, beyond {_pct(mass.beyond_rf)}.",
             f"scores (3W={3 * window},) masked -> softmax -> weights (nW, W, 3W) for all queries; this row (N,)."),
        Step(TITLES[6], f"Under CoA the pattern and weights are computed once, in group 1, and reused by all {g} "
             "groups; each group projects its own values, so its contribution differs. Shown: weight x |value|.",
             f"weights (nW, W, 3W) shared; v_g = conv1x1 (N, C={c}) per group; out_g = weights @ v_g (N, C)."),
        Step(TITLES[7], f"Dense softmax of the same query over ALL {n:,} keys (same embeddings). Recall = share of "
             f"that mass on the keys LSP gave it: {q.recall:.3f} here, {recall_mean:.3f} on average. "
             f"Largest dense weight off the query: {float(far.max()):.3g}.",
             f"dense: q (N, D) . k (N, D)^T -> (N, N) = {n * n:,} scores per layer; LSP: N x 3W = "
             f"{n * 3 * window:,} ({3 * window / n:.1%})."),
    )


def walkthrough(trace: Trace, radius: int, position: int | None = None, top: int = 8,
                recall_samples: int = 256) -> Walkthrough:
    """The eight steps on an LSP trace for the query at ``position`` (None: the far-reaching query,
    :func:`.query.far_reaching_query`); ``radius``: the receptive field for the mass split."""
    if trace.kind != "lsp":
        raise ValueError("the walkthrough needs an LSP (LCoAN) trace")
    p = trace.pattern_for(0)
    if position is None:
        position = far_reaching_query(trace, radius)
    q = query_attention(trace, position, radius, top=top)
    codes = p.codes[0]
    cosine = (p.key * p.centroids[0][codes]).sum(-1)
    contributions = torch.stack([q.row * g.value_norm for g in trace.groups])
    dense_row = p.dense_attention(position)
    sample = torch.randperm(p.n, generator=torch.Generator().manual_seed(1))[:recall_samples]
    recall_mean = float(p.recall_many(sample).mean())
    steps = captions(trace, q, codes, cosine, p.window, recall_mean, dense_row)
    return Walkthrough(lr_size=trace.lr_size, position=position, window=p.window,
                       num_clusters=p.centroids.shape[1], embedding_rgb=pca_rgb(p.key), codes=codes,
                       cosine=cosine, order=p.order[0], window_of=p.rank[0] // p.window,
                       roles=roles_of(trace, position), lsp=q, contributions=contributions,
                       dense_row=dense_row, recall_mean=recall_mean, steps=steps)
