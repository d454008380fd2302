"""Write the SHA-256 manifest (``SHA256SUMS``) of existing checkpoint folders.

    python -m scripts.manifest checkpoints/*

Each folder must load first (structure, config and tensors checked); a folder whose manifest
already disagrees with its files is refused: delete that manifest on purpose to re-issue it.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from lcoan import checkpoint


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.manifest", description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="+", help="checkpoint folders")
    args = p.parse_args(argv)
    for folder in args.folders:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a folder without a manifest yet is what this command is for
            checkpoint.load(folder)
        print(checkpoint.write_manifest(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
