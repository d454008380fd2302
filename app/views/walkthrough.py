"""The LSP / CoA walkthrough's eight pictures, one per step of :mod:`lcoan.introspect.walkthrough`:
pure functions from the step tensors (and the traced LR image) to PIL images."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from lcoan.introspect.query import weight_range
from lcoan.introspect.walkthrough import Walkthrough

from .attention import ROLE_COLOURS, outline_keys, weight_colours
from .common import display_factor, display_uint8, enlarge, mark, palette, pil

GAP = 8
LABEL = 18  # height of a panel's label band, display px


def _map(wt: Walkthrough, rgb: np.ndarray, factor: int | None = None, query: bool = True) -> np.ndarray:
    """(N, 3) or (H, W, 3) colours -> the enlarged map, the query outlined in cyan."""
    f = factor or display_factor(wt.lr_size)
    big = enlarge(np.round(np.asarray(rgb, np.float32).reshape(*wt.lr_size, 3)).astype(np.uint8), f)
    if query:
        y, x = divmod(wt.position, wt.lr_size[1])
        big = mark(big, y, x, f)
    return big


def _labelled(panels: list[np.ndarray], labels: list[str], cols: int | None = None) -> Image.Image:
    """Panels side by side (``cols`` per row), each with a text label above it, on white."""
    cols = cols or len(panels)
    rows = -(-len(panels) // cols)
    h = max(p.shape[0] for p in panels) + LABEL
    w = max(p.shape[1] for p in panels)
    out = Image.new("RGB", (cols * w + (cols - 1) * GAP, rows * h + (rows - 1) * GAP), "white")
    draw = ImageDraw.Draw(out)
    for i, (p, label) in enumerate(zip(panels, labels)):
        r, c = divmod(i, cols)
        x0, y0 = c * (w + GAP), r * (h + GAP)
        draw.text((x0 + 2, y0 + 3), label, fill=(0, 0, 0))
        out.paste(pil(p), (x0, y0 + LABEL))
    return out


def embeddings(wt: Walkthrough) -> Image.Image:
    """Step 1: the keys' first three principal components as RGB."""
    return pil(_map(wt, wt.embedding_rgb.numpy() * 255))


def nearest_centroid(wt: Walkthrough) -> Image.Image:
    """Step 2: cluster colour, brightness from the cosine to the centroid (lowest 5% darkest)."""
    cos = wt.cosine.numpy()
    lo, hi = np.percentile(cos, 5), cos.max()
    shade = 0.45 + 0.55 * np.clip((cos - lo) / max(hi - lo, 1e-6), 0, 1)
    return pil(_map(wt, palette(wt.num_clusters)[wt.codes.numpy()] * shade[:, None]))


def sorted_sequence(wt: Walkthrough, image: np.ndarray, cell: int = 1, max_width: int = 960) -> Image.Image:
    """Steps 3-4: the sorted sequence wrapped in rows of W, each window a row: the pixel's colour above
    its cluster's colour; the query's slot outlined in cyan and its three windows marked at the left."""
    n, w = wt.n, wt.window
    cell = max(cell, min(12, max_width // w))  # small windows get larger cells
    nw = wt.num_windows
    pixels = display_uint8(image).reshape(-1, 3)[wt.order.numpy()]
    clusters = palette(wt.num_clusters)[wt.codes.numpy()[wt.order.numpy()]]
    pad = nw * w - n
    pixels = np.concatenate([pixels, np.full((pad, 3), 255, np.uint8)]).reshape(nw, w, 3)
    clusters = np.concatenate([clusters, np.full((pad, 3), 255, np.uint8)]).reshape(nw, w, 3)
    band = 2 * cell + 1  # pixel row, cluster row, a white line between windows
    margin = 6
    out = np.full((nw * band, margin + w * cell, 3), 255, np.uint8)
    qwin = int(wt.window_of[wt.position])
    for i in range(nw):
        y0 = i * band
        out[y0:y0 + cell, margin:] = np.repeat(np.repeat(pixels[i:i + 1], cell, 0), cell, 1)
        out[y0 + cell:y0 + 2 * cell, margin:] = np.repeat(np.repeat(clusters[i:i + 1], cell, 0), cell, 1)
        if abs(i - qwin) <= 1:
            out[y0:y0 + 2 * cell, :margin - 2] = ROLE_COLOURS[2 + (i - qwin)]
    rank = int(np.nonzero(wt.order.numpy() == wt.position)[0][0])
    r, c = divmod(rank, w)
    y0, x0 = r * band, margin + c * cell
    ys, xs = slice(max(0, y0 - 2), y0 + 2 * cell + 2), slice(max(0, x0 - 2), x0 + cell + 2)
    inner = out[y0:y0 + 2 * cell, x0:x0 + cell].copy()
    out[ys, xs] = (0, 255, 255)  # a cyan frame around the query's slot
    out[y0:y0 + 2 * cell, x0:x0 + cell] = inner
    return pil(out)


def windows_on_image(wt: Walkthrough) -> Image.Image:
    """Step 4 on the image: each position in the colour of its window (a cyclic palette)."""
    pal = palette(max(wt.num_windows, 2))
    return pil(_map(wt, pal[wt.window_of.numpy()]))


def query_windows(wt: Walkthrough, image: np.ndarray) -> Image.Image:
    """Step 5: the positions of the query's own window and its two neighbours on the dimmed image."""
    base = display_uint8(image).reshape(-1, 3).astype(np.float32)
    grey = base.mean(-1, keepdims=True).repeat(3, -1) * 0.35
    roles = wt.roles.numpy()
    colours = np.asarray(ROLE_COLOURS, np.float32)[roles]
    out = np.where((roles > 0)[:, None], 0.3 * base + 0.7 * colours, grey)
    return pil(_map(wt, out))


def softmax_weights(wt: Walkthrough, image: np.ndarray) -> Image.Image:
    """Step 6: the query's keys coloured by weight (a fitted log range), top matches outlined."""
    row = wt.lsp.row.numpy()
    lo, hi = weight_range(wt.lsp.row, exclude=wt.position)
    f = display_factor(wt.lr_size)
    big = _map(wt, weight_colours(image, row, lo, hi), f, query=False)
    return pil(outline_keys(big, wt.lr_size, wt.position, wt.lsp.top_rc(), f))


def coa_groups(wt: Walkthrough, image: np.ndarray) -> Image.Image:
    """Step 7: weight x |value| for every group, one shared log range, side by side."""
    maps = wt.contributions.numpy()
    g = len(maps)
    others = maps.copy()
    others[:, wt.position] = 0
    nz = others[others > 0]
    hi = float(np.log10(nz.max())) if nz.size else 0.0
    lo = max(float(np.log10(nz.min())) if nz.size else hi - 3, hi - 3)
    f = max(1, display_factor(wt.lr_size) // 2) if g > 2 else display_factor(wt.lr_size)
    panels = [_map(wt, weight_colours(image, m, lo, hi), f) for m in maps]
    return _labelled(panels, [f"group {i + 1}: own values, shared weights" for i in range(g)], cols=min(g, 2))


def dense_and_recall(wt: Walkthrough, image: np.ndarray) -> Image.Image:
    """Step 8: the dense softmax of the query over all keys, and the same weights kept only where LSP
    gave the query keys (their sum is the recall)."""
    dense = wt.dense_row.numpy()
    lo, hi = weight_range(wt.dense_row, exclude=wt.position)
    f = display_factor(wt.lr_size)
    seen = dense * (wt.lsp.row.numpy() > 0)
    left = _map(wt, weight_colours(image, dense, lo, hi), f)
    right = _map(wt, weight_colours(image, seen, lo, hi), f)
    return _labelled([left, right], ["dense: all N keys (same embeddings)",
                                     f"the part LSP's keys cover: recall {wt.lsp.recall:.3f}"])


def step_pictures(wt: Walkthrough, image: np.ndarray) -> list[Image.Image]:
    """The eight pictures, in step order (``image``: the traced LR image (H, W, 3) in [0, 1])."""
    return [embeddings(wt), nearest_centroid(wt), sorted_sequence(wt, image), windows_on_image(wt),
            query_windows(wt, image), softmax_weights(wt, image), coa_groups(wt, image),
            dense_and_recall(wt, image)]
