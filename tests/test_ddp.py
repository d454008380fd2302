"""Issue 17: k-means statistics under DistributedDataParallel. Two ranks (gloo, CPU, spawned
processes) must hold the centroids and cluster sizes that one process computes on the union of
their batches; without the all-reduce each rank would move the centroids with its own half only."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from lcoan.attention.kmeans import CentroidBank
from lcoan.config import preset
from lcoan.network import LCoAN

BATCHES, PER_RANK, N, DIM, K = 4, 3, 40, 4, 6


def union_batches() -> list[torch.Tensor]:
    """The union batch of each step: (2 * PER_RANK, N, DIM) unit vectors around a few directions."""
    g = torch.Generator().manual_seed(5)
    centres = F.normalize(torch.randn(K, DIM, generator=g), dim=-1)
    out = []
    for _ in range(BATCHES):
        pick = torch.randint(K, (2 * PER_RANK, N), generator=g)
        out.append(F.normalize(centres[pick] + 0.3 * torch.randn(2 * PER_RANK, N, DIM, generator=g), dim=-1))
    return out


def union_images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(6)
    lr = torch.rand(2 * PER_RANK, 3, 12, 12, generator=g)
    return lr, F.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False)


def run_bank(batches: list[torch.Tensor], reseed: bool) -> CentroidBank:
    torch.manual_seed(0)  # the k-means initialisation draws from the global RNG (rank 0's, under DDP)
    bank = CentroidBank(rounds=2, num_clusters=K, dim=DIM, decay=0.8, init_iters=5, reseed_dead=reseed,
                        dead_fraction=0.5 if reseed else 0.03).train()
    for x in batches:
        bank(x)
    return bank


def run_model(lr: torch.Tensor, hr: torch.Tensor, ddp: bool) -> LCoAN:
    """Two training steps of a tiny LCoAN (k-means initialisation, then an EMA step)."""
    torch.manual_seed(0)
    model = LCoAN(preset("tiny", scale=2)).train()
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        loss = F.l1_loss(net(lr), hr)
        optim.zero_grad()
        loss.backward()
        optim.step()
    return model


def worker(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        half = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        mine = [x[half] for x in union_batches()]
        lr, hr = union_images()
        tensors = {}
        for reseed in (False, True):
            bank = run_bank(mine, reseed)
            tensors[f"bank{int(reseed)}.centroids"] = bank.centroids
            tensors[f"bank{int(reseed)}.cluster_size"] = bank.cluster_size
        model = run_model(lr[half], hr[half], ddp=True)
        tensors["model.centroids"] = model.patterns[0].clusters.centroids
        save_file({k: v.detach().contiguous() for k, v in tensors.items()},
                  os.path.join(out, f"rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, torch.Tensor]]:
    out = tmp_path_factory.mktemp("ddp")
    init = f"file://{out / 'rendezvous'}"
    mp.spawn(worker, args=(2, init, str(out)), nprocs=2, join=True)
    return [load_file(str(Path(out) / f"rank{r}.safetensors")) for r in range(2)]


def test_two_ranks_equal_one_process_on_the_union_batch(ranks):
    one = run_bank(union_batches(), reseed=False)
    for rank in ranks:
        torch.testing.assert_close(rank["bank0.centroids"], one.centroids, rtol=0, atol=1e-6)
        torch.testing.assert_close(rank["bank0.cluster_size"], one.cluster_size, rtol=1e-6, atol=1e-5)
    # the test can tell: one rank's half alone gives other centroids
    half = run_bank([x[:PER_RANK] for x in union_batches()], reseed=False)
    assert (half.centroids - one.centroids).abs().max() > 1e-3


def test_reseeding_keeps_the_ranks_identical(ranks):
    """Dead clusters are found from the reduced sizes and re-seeded from rank 0's batch on every rank."""
    assert torch.equal(ranks[0]["bank1.centroids"], ranks[1]["bank1.centroids"])
    assert torch.equal(ranks[0]["bank1.cluster_size"], ranks[1]["bank1.cluster_size"])
    no_reseed = ranks[0]["bank0.centroids"]
    assert not torch.allclose(ranks[0]["bank1.centroids"], no_reseed)  # re-seeding did happen


def test_ddp_training_moves_centroids_like_one_process(ranks):
    """LCoAN under DistributedDataParallel: initialisation and EMA step see both ranks' images."""
    lr, hr = union_images()
    one = run_model(lr, hr, ddp=False).patterns[0].clusters.centroids.detach()
    for rank in ranks:
        torch.testing.assert_close(rank["model.centroids"], one, rtol=0, atol=1e-5)
