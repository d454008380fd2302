"""Export a checkpoint folder from a run's latest resume state (e.g. while the run still trains).

    python -m scripts.snapshot RUN_DIR OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

from lcoan.training.resume import export_snapshot


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.exit(__doc__)
    info = export_snapshot(Path(argv[0]), Path(argv[1]))
    print(f"{argv[1]}: snapshot at {info['iterations']} iterations (val {info['final_val_psnr']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
