"""About tab: what LSP and CoA do (with a diagram), the paper, and what the shipped checkpoints are."""
from __future__ import annotations

import json

import gradio as gr

from app.services.inspection import inspector_for
from app.views.diagram import diagram_svg
from lcoan.checkpoint import training_stages
from lcoan.introspect.report import interval

TITLE = "About LCoA"

CITATION = """@article{chen2024lcoan,
  title   = {Efficient Learnable Collaborative Attention for Single Image Super-Resolution},
  author  = {Chen, G.-Y. and Gan, M. and Su, J. and Zheng, Y.},
  journal = {arXiv preprint arXiv:2404.04922},
  year    = {2024}
}"""

EXPLANATION = """
### Non-local attention, and what it costs
A non-local attention (NLA) block lets every position of the low-resolution feature map gather
information from every other position: repeated windows, bricks, text and textures help each
other. Dense NLA builds an **N x N** similarity matrix (N = H x W positions), so its time and memory
grow with N², and a deep SR network recomputes such a matrix in every residual group, although it
changes little from one group to the next.

### Learnable Sparse Pattern (LSP)
Each position is embedded by a 3x3 convolution (the *match* embedding), L2-normalised and assigned
to the nearest of **K learned centroids** by cosine similarity (K = 128). The centroids are a k-means
buffer, not trained by gradients: initialised by k-means on the first training batch, then moved by an
exponential moving average of the per-cluster means of each training batch (never at inference).
Positions are **stably sorted by cluster id** and the sorted sequence is cut into **windows of W
positions** (W = 384); each window's queries attend to the keys of their own window and of the two
neighbouring windows (3W keys), so a cluster that straddles a window border is still covered. The
scores are raw query . normalised key, softmaxed over those keys (the shipped checkpoints multiply the
query by a learnable scale, an optional departure from the paper that sharpens the softmax; see the
table below). Cost: O(N . 3W) instead of O(N²).

### Collaborative Attention (CoA)
The sparse pattern (cluster codes, sort order) **and its softmax weights** are computed once, in the
first residual group, and **reused by every later group**. Each group only computes its own value
projection (a 1x1 convolution) and aggregates it with the shared weights. So the similarity matrix is
computed once per forward pass instead of once per layer, and it is trained by the gradients of all
groups together. This reuse is where most of the paper's ~83 % reduction of non-local inference time
comes from.

### What the tabs show
- **Super-resolve**: bicubic and LCoAN on the whole picture, no attention and dense NLA on a region,
  side by side (with PSNR / SSIM when the picture is degraded first).

The next tabs look inside a traced forward pass of the shipped checkpoints:
- **Clusters (LSP)**: the centroid each LR position joined, cluster sizes, a PCA/UMAP projection of the
  match embeddings with the centroids, and patches of one cluster side by side.
- **Attention per layer**: the keys a clicked query attends to, drawn by weight, its self-weight, its
  strongest matches as patches, where its mass goes (itself, 3x3, within / beyond the convolutions'
  receptive field) for LSP and every dense layer, each group's contribution (weight x |value|: the
  weights are shared, the values are not), and the *attention-mass recall* (how much of the dense
  softmax mass, with LCoAN's own embeddings, falls on the keys LSP chose). One button picks the query
  whose attention reaches farthest.
- **LSP step by step**: eight steps on your picture, from the match embeddings to CoA and the dense
  comparison, each one picture and two lines with the tensor shapes.
- **k-means live**: the spherical k-means with the EMA update used in training, run on your picture's
  embeddings from the trained centroids or a fresh start, frame by frame.
- **Shared similarity**: the one sparse matrix in cluster-sorted order (a band of windows) beside the
  dense model's per-layer matrices, and a layer x layer redundancy matrix of the dense maps.
- **Efficiency**: non-local time of dense NLA, LSP recomputed in every group, and LCoA, measured on
  your input.
- **Experiments**: the window W and k-means rounds as inference-time knobs (PSNR, recall and time),
  where attention changes the output (ablation), attribution maps (LAM) and a traced pass to download,
  on your picture used as the high-resolution reference.
"""

DISCLAIMER = """
### The shipped checkpoints
They are **small models trained for this project**, partly on a 2-core CPU and partly on a GPU lent
for a few minutes (the "s" preset: 32 channels, 4 residual groups of 4 blocks, K = 128, W = 384;
sizes and training in the table below, trained on 390 of the 400 BSDS500 train/test photographs,
10 held out for validation). They are **not the paper's weights**: the paper's full-size LCoAN
(128 channels, 10 groups, reported at about 15.7 M parameters, trained on DIV2K) is not included and
its numbers are not reproduced here.
The app shows how the mechanism behaves in *these* models; clusters and attention maps of a briefly
trained model are less structured than those of a fully trained one. Dense-NLA checkpoints are the
same backbone with a dense non-local block in every group, trained the same way, for comparison.
"""


def checkpoint_table(service) -> str:
    models = inspector_for(service).models
    if not models.entries:
        return "*No checkpoints are loaded on this server (set LCOAN_CHECKPOINTS or export some; see README).*"
    rows = ["| checkpoint | kind | scale | preset | channels x groups x blocks | K / W | parameters | trained |",
            "|---|---|---|---|---|---|---|---|"]
    for (_kind, scale), e in sorted(models.entries.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        c = e.model.cfg
        info = e.info or {}
        its = [int(st.get("iterations") or 0) for st in training_stages(info)]
        trained = (" + ".join(f"{n:,}" for n in its) + " iterations") if any(its) else "not recorded"
        if info.get("final_val_psnr"):
            trained += f", val {info['final_val_psnr']:.2f} dB"
        if info.get("snapshot"):
            trained += " (snapshot: training continues)"
        kw = f"{c.num_clusters} / {c.window}" if c.attention == "lsp" else "-"
        rows.append(f"| `{e.folder.name}` | {e.label} | x{scale} | {c.name} | {c.num_feat} x {c.num_groups} x "
                    f"{c.num_blocks} | {kw} | {e.model.num_parameters() / 1e6:.2f} M | {trained} |")
    return "\n".join(rows)


def attention_table(service) -> str:
    """Whether each loaded checkpoint uses its attention, from its ``attention.json``
    (``python -m scripts.attention_card``; held-out photos); '' when no checkpoint has one."""
    models = inspector_for(service).models
    rows = []
    for (_kind, _scale), e in sorted(models.entries.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        path = e.folder / "attention.json"
        if e.model.cfg.attention == "none" or not path.is_file():
            continue
        flags = ", ".join(e.model.cfg.departures(short=True)) or "none"
        try:
            reports = json.loads(path.read_text())
            for r in reports:
                m = r["summary"]
                recall = f"{m['recall']:.2f} (flat {m['flat_recall']:.2f})" if m.get("recall") is not None else "-"
                used = f"{100 * m['clusters_used']:.0f}%" if m.get("clusters_used") is not None else "-"
                drop = interval(m["drop_ci"]) if m.get("drop_ci") else f"{m['drop']:+.3f}"
                mass = " / ".join(f"{m[k]:.2f}" if m.get(k) is not None else "-"
                                  for k in ("mass_self", "mass_beyond_rf"))
                rows.append(f"| `{e.folder.name}` | {flags} | {r['data']} | {drop} | {interval(m.get('gain_ci'))} | "
                            f"{mass} | {m['entropy']:.2f} | {recall} | {used} |")
        except (ValueError, KeyError, TypeError):
            rows.append(f"| `{e.folder.name}` | {flags} | unreadable attention.json | | | | | | |")
    if not rows:
        return ""
    return ("### Do these networks use their attention?\n"
            "Measured on held-out photos (`python -m lcoan.introspect.report`; the README explains each column). "
            "*drop*: Y-PSNR lost when the attention branch is switched off (negative: switching it off helps); "
            "*gain*: Y-PSNR over the no-attention checkpoint of the same scale; brackets: 95% paired bootstrap "
            "intervals over the images and the 128x128-LR tiles within them; *self / beyond RF*: share of the "
            "attention on the query itself / on keys beyond the convolutions' receptive field; "
            "*entropy*: of the dense softmax over the model's own embeddings, / log N (1 = uniform); *recall*: "
            "share of that dense mass on the keys LSP picks; *clusters*: share of the K centroids in use.\n\n"
            "| checkpoint | departures from the paper | photos | drop (dB) [95% CI] | gain over none [95% CI] | "
            "self / beyond RF | entropy | recall | clusters |\n"
            "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))


def build(service) -> None:
    gr.Markdown("## LCoAN: Learnable Sparse Pattern + Collaborative Attention")
    entries = inspector_for(service).models.entries.values()
    gr.HTML(diagram_svg(tuple(e.model.cfg.attn_res_scale for e in entries if e.model.cfg.attention == "lsp")))
    gr.Markdown(EXPLANATION)
    gr.Markdown(DISCLAIMER)
    gr.Markdown(checkpoint_table(service))
    table = attention_table(service)
    if table:
        gr.Markdown(table)
    gr.Markdown("### Citation\nG.-Y. Chen, M. Gan, J. Su, Y. Zheng, *Efficient Learnable Collaborative Attention "
                "for Single Image Super-Resolution*, arXiv:2404.04922, 2024. This is an independent implementation "
                "written from the paper's description; no code of the authors is used.")
    gr.Code(CITATION, language=None, label="BibTeX", interactive=False)
