"""2-D projection of match embeddings and centroids (PCA, or UMAP imported only on request)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .models import ServiceError

PROJECTION_METHODS = ("pca", "umap")


def check_method(method: str) -> str:
    """The method name, lower-cased; ServiceError for anything but "pca" or "umap"."""
    method = method.lower()
    if method not in PROJECTION_METHODS:
        raise ServiceError(f"projection must be 'pca' or 'umap', got {method!r}")
    return method


def project(emb: np.ndarray, cents: np.ndarray, method: str,
            progress: Callable[[float, str], None] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Embeddings (S, D) and centroids (K, D) -> their 2-D points (S, 2), (K, 2) and a note.

    "pca" (scikit-learn, fitted on the embeddings) or "umap" (umap-learn, cosine metric, fitted on
    both; slow the first time in a process: numba compiles)."""
    both = np.concatenate([emb, cents]).astype(np.float32)
    if check_method(method) == "pca":
        from sklearn.decomposition import PCA
        pca = PCA(n_components=2, random_state=0).fit(emb if len(emb) >= 2 else both)
        xy = pca.transform(both)
        note = f"PCA (explained variance {pca.explained_variance_ratio_.sum():.0%})"
    else:
        if progress:
            progress(0.05, "importing umap-learn (slow the first time)")
        import umap
        if progress:
            progress(0.3, f"fitting UMAP on {len(both)} points")
        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(both) - 1), metric="cosine",
                            random_state=0, n_jobs=1)
        xy = reducer.fit_transform(both)
        note = "UMAP (cosine metric)"
    if progress:
        progress(1.0, "done")
    return xy[:len(emb)], xy[len(emb):], note
