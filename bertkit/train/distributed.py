"""One process or many: device choice and torchrun / DistributedDataParallel set-up.

`torchrun --nproc_per_node N -m bertkit pretrain ...` starts N copies with RANK, WORLD_SIZE and
LOCAL_RANK set; `setup()` reads them, joins the process group (NCCL on GPUs, gloo on CPUs) and
returns a `DistEnv`. Without those variables it is a world of one and touches no process group,
so the same code path serves a laptop run and a multi-node run.

Conventions the rest of bertkit follows: every rank reads its own share of each global batch,
gradients are averaged by DDP, only rank 0 (`env.is_main`) logs and writes files, and anything
all ranks must agree on (stop now? save now?) goes through `env.any(flag)`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from bertkit.errors import BertkitError
from bertkit.hardware import resolve_device


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_reduce(self, values: list[float]) -> list[float]:
        """Sum a few numbers over all ranks (float64, so token counts stay exact)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank says True (for stop / interrupt decisions)."""
        return bool(self.all_reduce([float(flag)])[0] > 0) if self.distributed else bool(flag)

    def gather_objects(self, obj) -> list:
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """hardware.resolve_device's rule, except that "auto" and a bare "cuda" mean this process's
    own GPU (cuda:LOCAL_RANK) under torchrun."""
    device = resolve_device(name)
    if device.type == "cuda" and (str(name).strip().lower() in ("auto", "cuda")):
        if local_rank >= torch.cuda.device_count():
            raise BertkitError(
                f"--device {name}: LOCAL_RANK {local_rank} has no GPU of its own "
                f"({torch.cuda.device_count()} visible); start at most that many processes per machine"
            )
        device = torch.device("cuda", local_rank)
    return device


def setup(device: str = "auto", threads: int | None = None) -> DistEnv:
    """Read torchrun's environment, choose the device and join the process group if N > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    dev = pick_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if threads:
        torch.set_num_threads(threads)
    elif dev.type == "cpu" and local_world > 1:  # share the cores instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    backend = None
    if world > 1:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend, rank=rank, world_size=world)
    return DistEnv(rank, world, local_rank, local_world, dev, backend)


def cleanup(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, env: DistEnv) -> torch.nn.Module:
    """DDP around the model when there are several ranks; the model itself otherwise."""
    if not env.distributed:
        return model

    ids = [env.device.index] if env.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)
