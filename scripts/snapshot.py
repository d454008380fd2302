"""Export a checkpoint folder from a run's latest resume state: python scripts/snapshot.py RUN_DIR OUT_DIR"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lcoan.train import export_snapshot  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    info = export_snapshot(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{sys.argv[2]}: snapshot at {info['iterations']} iterations (val {info['final_val_psnr']})")
