"""The About tab's diagram of LCoA (LSP + CoA), drawn as an SVG string (no external assets)."""
from __future__ import annotations

from html import escape

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")
# a 4 x 6 toy feature map: cluster id of each position (sky, roof, wall, window-like texture)
TOY = ((0, 0, 0, 0, 1, 1),
       (0, 0, 0, 1, 1, 1),
       (2, 3, 2, 3, 2, 1),
       (2, 3, 2, 3, 2, 2))
W = 6  # window of the toy sequence


def _text(x: float, y: float, s: str, size: int = 13, anchor: str = "start", weight: str = "normal",
          fill: str = "#222") -> str:
    return (f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{fill}" font-family="sans-serif">{escape(s)}</text>')


def _box(x: float, y: float, w: float, h: float, lines: list[str], fill: str = "#f4f6fb") -> str:
    out = [f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" stroke="#556" stroke-width="1"/>']
    top = y + h / 2 - 8 * (len(lines) - 1) + 4
    out += [_text(x + w / 2, top + 16 * i, s, 12, "middle") for i, s in enumerate(lines)]
    return "".join(out)


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#445" stroke-width="1.5" marker-end="url(#arrow)"/>'


def diagram_svg(branch_scales: tuple[float, ...] = ()) -> str:
    """LSP (embed, assign to centroids, sort, window, band of 3W keys) computed once; CoA (every
    group reuses its order and weights with its own values). ``branch_scales``: the attention branch
    scales a of the checkpoints on show, named next to the paper's 0.1."""
    shipped = ", ".join(f"{a:g}" for a in sorted(set(branch_scales)))
    note = "a: scale of the attention branch, 0.1 in the paper" + (f"; {shipped} in the checkpoints here"
                                                                    if shipped else "")
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 980 540" width="100%" '
             'style="max-width:980px;background:white">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#445"/></marker></defs>',
             _text(10, 22, "Learnable Sparse Pattern (LSP): computed once per forward pass, in group 1", 15,
                   weight="bold")]
    # toy feature map
    cell = 20
    ox, oy = 20, 50
    for r, row in enumerate(TOY):
        for c, k in enumerate(row):
            parts.append(f'<rect x="{ox + c * cell}" y="{oy + r * cell}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill="{COLOURS[k]}"/>')
    parts.append(_text(ox, oy + 4 * cell + 18, "LR feature map, N = H x W", 12))
    parts.append(_text(ox, oy + 4 * cell + 34, "(colour = cluster it joins)", 11, fill="#555"))
    parts.append(_arrow(150, 90, 173, 90))
    parts.append(_box(175, 55, 200, 70, ["match embedding (3x3 conv)", "key: L2-normalised", "query: raw"]))
    parts.append(_arrow(375, 90, 390, 90))
    parts.append(_box(392, 55, 180, 70,
                      ["nearest of K centroids", "(cosine; k-means, EMA", "updates in training only)"]))
    parts.append(_arrow(572, 90, 590, 90))
    # sorted sequence with windows
    seq = sorted((k, i) for i, k in enumerate(k for row in TOY for k in row))
    sx, sy, sc = 595, 70, 15
    for j, (k, _) in enumerate(seq):
        parts.append(f'<rect x="{sx + j * sc}" y="{sy}" width="{sc - 2}" height="{sc + 6}" fill="{COLOURS[k]}"/>')
    for b in range(0, len(seq) + 1, W):
        parts.append(f'<line x1="{sx + b * sc - 1}" y1="{sy - 8}" x2="{sx + b * sc - 1}" y2="{sy + 30}" '
                     f'stroke="#222" stroke-width="1.5"/>')
    for wi in range(len(seq) // W):
        parts.append(_text(sx + (wi + 0.5) * W * sc, sy - 12, f"window {wi + 1}", 11, "middle"))
    parts.append(_text(sx, sy + 48, "stable sort by cluster id, cut into windows of W", 12))
    parts.append(_text(sx, sy + 64, "(W = 384 positions in the reference model)", 11, fill="#555"))
    # band matrix
    bx, by, bs = 640, 170, 26
    nwin = len(seq) // W
    for a in range(nwin):
        for b in range(nwin):
            fill = "#2a788e" if abs(a - b) <= 1 else "#eef"
            parts.append(f'<rect x="{bx + b * bs}" y="{by + a * bs}" width="{bs - 2}" height="{bs - 2}" '
                         f'fill="{fill}"/>')
    parts.append(_text(bx + nwin * bs + 12, by + 20, "each window's queries attend to", 12))
    parts.append(_text(bx + nwin * bs + 12, by + 36, "its own and both neighbouring", 12))
    parts.append(_text(bx + nwin * bs + 12, by + 52, "windows: 3W keys, softmax of", 12))
    parts.append(_text(bx + nwin * bs + 12, by + 68, "query . key (no N x N matrix)", 12))
    parts.append(_text(bx, by + nwin * bs + 16, "sparse weights, sorted order", 11, fill="#555"))
    parts.append(_arrow(760, 130, 720, 166))
    parts.append(_text(20, 215, "Cost per layer O(N . 3W) instead of O(N²).", 12))
    parts.append(_text(20, 233, "One k-means round; R rounds merge by log-sum-exp.", 12))
    # CoA
    parts.append(_text(10, 310, "Collaborative Attention (CoA): every residual group reuses the same order and weights",
                       15, weight="bold"))
    parts.append(_box(20, 345, 190, 60, ["shared pattern", "sort order + softmax weights"], fill="#dff0e8"))
    for g in range(4):
        x = 260 + g * 180
        label = "group 1 (computes it)" if g == 0 else f"group {g + 1}" if g < 3 else "group G"
        parts.append(_box(x, 330, 160, 90, [label, "residual blocks", "own value proj. (1x1 conv)",
                                            "x shared weights, + a x"]))
        parts.append(f'<path d="M 115 405 C 115 {452 + 4 * g}, {x + 80} {452 + 4 * g}, {x + 80} 423" fill="none" '
                     f'stroke="#2a8" stroke-width="1.5" marker-end="url(#arrow)"/>')
        if g < 3:
            parts.append(_arrow(x + 160, 360, x + 180, 360))
    parts.append(_text(20, 500, "Dense NLA instead computes its own N x N softmax in every group; CoA computes one "
                                "sparse matrix and trains it with the gradients of all groups.", 12))
    parts.append(_text(20, 522, note, 12, fill="#555"))
    parts.append("</svg>")
    return "".join(parts)
