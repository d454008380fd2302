"""Re-create the bundled example images from the sample photographs that scikit-image ships.

    python assets/make_examples.py

Each example is a crop (no other change) of an image in the installed ``skimage/data`` folder;
sources and licences are listed in assets/README.md. Crops are chosen for self-similarity
(lattices, bricks, text, fur, wood grain): the structure non-local attention exploits.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

OUT = Path(__file__).resolve().parent / "examples"

# file name: (skimage.data loader, (top, left, height, width))
CROPS = {
    "rocket_tower.png": ("rocket", (96, 0, 192, 192)),
    "astronaut_patch.png": ("astronaut", (296, 112, 192, 192)),
    "brick_wall.png": ("brick", (0, 0, 192, 192)),
    "text_page.png": ("text", (0, 0, 172, 224)),
    "chelsea_fur.png": ("chelsea", (40, 100, 192, 192)),
    "coffee_wood.png": ("coffee", (200, 408, 192, 192)),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, (loader, (top, left, h, w)) in CROPS.items():
        img = np.asarray(getattr(skimage.data, loader)())
        crop = img[top:top + h, left:left + w]
        assert crop.shape[:2] == (h, w), (name, crop.shape)
        Image.fromarray(np.ascontiguousarray(crop)).save(OUT / name, optimize=True)
        print(f"{name}: {w}x{h} from skimage.data.{loader}(), {(OUT / name).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
