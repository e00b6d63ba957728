"""Multi-process (DistributedDataParallel) training under ``torchrun``: docs/performance.md, Several GPUs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..errors import TrainingError

__all__ = ["DistContext", "env_world_size", "setup", "teardown", "unwrap"]


@dataclass
class DistContext:
    enabled: bool = False
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    created: bool = False  # we initialised the process group (and tear it down)
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def reduce_step(self, loss: float, stop: bool) -> tuple[float, bool]:
        """(mean loss over ranks, whether any rank asks to stop)."""
        if not self.enabled:
            return loss, stop
        t = torch.tensor([loss, 1.0 if stop else 0.0], dtype=torch.float64)
        if self.backend == "nccl":
            t = t.to(torch.device("cuda", torch.cuda.current_device()))
        torch.distributed.all_reduce(t)
        t = t.cpu()
        return float(t[0]) / self.world, bool(t[1] > 0)


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def setup(distributed="auto", device: torch.device | None = None) -> DistContext:
    """Join (or start) the process group when running under torchrun."""
    import torch.distributed as dist

    if distributed in (False, None, "off", "no"):
        return DistContext()
    if distributed not in ("auto", True, "on", "yes"):
        raise TrainingError(f"distributed must be 'auto', True or False, got {distributed!r}")
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        if world == 1:
            return DistContext()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistContext(True, rank, world, local, False, dist.get_backend())
    world = env_world_size()
    if world <= 1:
        if distributed is True or distributed in ("on", "yes"):
            raise TrainingError(
                "distributed=True but no torchrun environment (WORLD_SIZE > 1) was found: launch the script with "
                "`torchrun --nproc_per_node N script.py`"
            )
        return DistContext()
    if not dist.is_available():
        raise TrainingError("this PyTorch build has no torch.distributed support; run without torchrun")
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device is None or device.type == "cuda") and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return DistContext(True, dist.get_rank(), dist.get_world_size(), local, True, backend)


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and ctx.created:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def unwrap(model):
    """The network inside a DDP / DataParallel wrapper."""
    while isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model = model.module
    return model
