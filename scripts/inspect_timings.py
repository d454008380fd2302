"""Time the inside-LCoA endpoints of the full app through gradio_client, for one input image.

    python -m scripts.inspect_timings [--checkpoints DIR] [--image PATH] [--scale 2] [--region downscale]

Default image: a 256x256 crop of scikit-image's astronaut photo. Prints a markdown table: the first
call of each view (traces, first derived quantities) and then interactions re-rendered from the cache
(median of a few calls each), and the attention-mass recall of the bundled examples.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    p.add_argument("--image", type=Path)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--region", default="downscale", choices=["downscale", "crop"])
    p.add_argument("--threads", type=int)
    args = p.parse_args()

    from gradio_client import Client, handle_file
    from PIL import Image

    from app.services.examples import available
    from app.services.inspection import inspector_for
    from app.services.models import ModelService
    from app.settings import Settings
    from app.ui import build_demo
    from lcoan.bench.timing import timed_call

    if args.image is None:
        from skimage import data
        args.image = Path(tempfile.mkdtemp()) / "astronaut256.png"
        Image.fromarray(data.astronaut()[40:296, 120:376]).save(args.image)
    settings = Settings.from_env().replace(checkpoints=args.checkpoints,
                                           **({"threads": args.threads} if args.threads else {}))
    service = ModelService.from_settings(settings)
    demo = build_demo(service)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True)
    client = Client(url, verbose=False)
    common = {"image": handle_file(str(args.image)), "scale": args.scale, "region": args.region}
    rows: list[tuple[str, str, float, int]] = []

    def timed(kind: str, what: str, repeats: int = 1, **kwargs):
        calls = [timed_call(lambda: client.predict(**kwargs)) for _ in range(repeats)]
        rows.append((kind, what, statistics.median(seconds for _, seconds in calls), repeats))
        return calls[-1][0]

    with Image.open(args.image) as im:
        size = f"{im.width}x{im.height}"
    print(f"image {args.image} ({size}), x{args.scale}, region {args.region}, threads {settings.threads}", flush=True)
    first = "first call"
    _, _, _, choice = timed(first, "/clusters (LCoAN trace + overlay + sizes)", **common, opacity=0.6,
                            api_name="/clusters")
    timed(first, "/cluster_projection PCA", **common, method="pca", cluster=choice["value"],
          api_name="/cluster_projection")
    timed(first, "/attention (dense trace + recall over 256 queries)", **common, y=10, x=10, log=False,
          api_name="/attention")
    timed(first, "/similarity_band whole matrix", **common, span=0, start=0, api_name="/similarity_band")
    timed(first, "/similarity_layers (sampled maps + redundancy)", **common, api_name="/similarity_layers")
    cached = "interaction (cached)"
    timed(cached, "/clusters, new opacity", 3, **common, opacity=0.3, api_name="/clusters")
    for k in [c[1] for c in choice["choices"][1:4]]:
        timed(cached, f"/cluster_members cluster {k}", 1, **common, cluster=k, api_name="/cluster_members")
    timed(cached, "/cluster_projection, other cluster highlighted", 3, **common, method="pca",
          cluster=choice["choices"][1][1], api_name="/cluster_projection")
    for y, x in ((20, 30), (64, 64), (100, 20)):
        timed(cached, f"/attention query ({y}, {x})", 1, **common, y=y, x=x, log=False, api_name="/attention")
    timed(cached, "/attention, log colour scale", 3, **common, y=64, x=64, log=True, api_name="/attention")
    timed(cached, "/similarity_band zoom: 1 window", 3, **common, span=-1, start=2000, api_name="/similarity_band")
    timed(cached, "/similarity_band zoom: 128 positions", 3, **common, span=128, start=5000,
          api_name="/similarity_band")
    timed(cached, "/similarity_layers again", 3, **common, api_name="/similarity_layers")

    print("\n| kind | call | seconds (median) | calls |\n|---|---|---|---|")
    for kind, what, sec, n in rows:
        print(f"| {kind} | {what} | {sec:.2f} | {n} |")

    inspector = inspector_for(service)
    print("\n| example | traced | recall mean | median | min |\n|---|---|---|---|---|")
    for example, path in available():
        insp = inspector.inspect(str(path), args.scale, args.region)
        s = inspector.recall_stats(insp)
        h, w = insp.size
        print(f"| {example.file} | {w}x{h} | {s['mean']:.3f} | {s['median']:.3f} | {s['min']:.3f} |")
    client.close()
    demo.close()


if __name__ == "__main__":
    main()
