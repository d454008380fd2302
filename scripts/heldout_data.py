"""Install the held-out validation folders used to choose training variants (never Set5/Set14).

    python -m scripts.heldout_data [--bsds ../shared/data/train/bsds400] [--out data/heldout]

- ``OUT/bsds``: the BSDS photos that ``lcoan.training.train`` holds out (every 40th by name), copied.
- ``OUT/bsds-gray``: the same photos in grayscale (ITU-R 601 luma, as RGB), a diagnostic: it tells
  "the structure photos are gray" apart from "the structure photos repeat".
- ``OUT/structure``: photographs with repeated structure that ship inside scikit-image (no
  download), saved as PNG: a brick wall, gravel and grass (CC0, from CC0Textures / DeviantArt),
  Greek coins (Brooklyn Museum, no known copyright) and a page of text (public domain, Wikipedia).
  Provenance and licence are written next to them in ``LICENSES.md``. None is used for training.
- ``OUT/repeat``: the held-out set with long-range repetition (issue 24): the five structure images and
  three more from scikit-image (a scanned page, a tissue stain of repeated glands, a tabby cat's fur);
  none of the compared runs trained on any of them. ``lcoan.introspect.report`` cuts every image into
  128x128-LR tiles, so its intervals resample images and tiles within them.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lcoan.training.data import list_images, split

STRUCTURE = {
    # name: (skimage.data function, provenance and licence as scikit-image documents them)
    "brick": ("brick", "brick wall, CC0Textures 'Bricks25', CC0 1.0"),
    "gravel": ("gravel", "gravel, CC0Textures 'Gravel04', CC0 1.0"),
    "grass": ("grass", "grass, DeviantArt linolafett 'Grass-01', CC0 1.0"),
    "coins": ("coins", "Greek coins from Pompeii, Brooklyn Museum collection, no known copyright restrictions"),
    "text": ("text", "'Corner.png' from Wikipedia, public domain"),
}
REPEAT = {
    **STRUCTURE,
    "page": ("page", "a scanned page of printed text, shipped with scikit-image (BSD-3-Clause); no other source named"),
    "ihc": ("immunohistochemistry", "IHC-stained colonic glands, Center for Microscopy And Molecular Imaging, "
                                    "no known copyright restrictions"),
    "chelsea": ("chelsea", "Chelsea the cat, photograph by Stefan van der Walt, CC0"),
}


def install(bsds: Path, out: Path, val_every: int = 40) -> dict[str, list[Path]]:
    import skimage.data

    written: dict[str, list[Path]] = {"bsds": [], "bsds-gray": [], "structure": [], "repeat": []}
    (out / "bsds").mkdir(parents=True, exist_ok=True)
    (out / "bsds-gray").mkdir(parents=True, exist_ok=True)
    (out / "structure").mkdir(parents=True, exist_ok=True)
    if bsds.is_dir():
        for f in split(list_images(bsds), val_every)[1]:
            shutil.copyfile(f, out / "bsds" / f.name)
            written["bsds"].append(out / "bsds" / f.name)
            gray = out / "bsds-gray" / f"{f.stem}.png"
            Image.open(f).convert("L").convert("RGB").save(gray)
            written["bsds-gray"].append(gray)
    else:
        print(f"note: {bsds} not found, only the structure set is installed", file=sys.stderr)
    for folder, images in (("structure", STRUCTURE), ("repeat", REPEAT)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        lines = [f"# Held-out {folder} images (from scikit-image's bundled data; not training data)", ""]
        for name, (func, licence) in images.items():
            img = np.asarray(getattr(skimage.data, func)())
            path = out / folder / f"{name}.png"
            Image.fromarray(img).convert("RGB").save(path)
            written[folder].append(path)
            lines.append(f"- `{name}.png` ({img.shape[1]}x{img.shape[0]}): {licence}")
        (out / folder / "LICENSES.md").write_text("\n".join(lines) + "\n")
    return written


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bsds", default="../shared/data/train/bsds400")
    p.add_argument("--out", default="data/heldout")
    args = p.parse_args()
    written = install(Path(args.bsds), Path(args.out))
    for k, v in written.items():
        print(f"{k}: {len(v)} images in {Path(args.out) / k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
