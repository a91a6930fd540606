"""Several processes training one net, with Caffe's multi-GPU meaning, on torch.distributed.

Caffe (parallel.cpp, NCCL): every solver runs the full batch_size on its own records (rank r
of N keeps the records whose offset % N == r); after each iteration's backward passes the
gradients are summed across solvers and divided by N; every solver applies the same update;
the root solver alone tests, logs and snapshots; at start the root's weights are broadcast.
So N processes × batch B train like one process with batch N·B (for nets whose layers do not
mix samples: BatchNorm statistics stay per process, as in Caffe).

Processes come from torchrun (RANK, WORLD_SIZE, LOCAL_RANK in the environment); the backend
is NCCL on GPUs, gloo on CPUs.
"""
import os

import torch
import torch.distributed as dist

from .signals import EFFECTS, NONE

ACTION_CODES = {name: code for code, name in enumerate(EFFECTS)}   # stop 0, snapshot 1, none 2


def launched_by_torchrun():
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


class World:
    """This process's place among the training processes (a group of one is fine)."""

    def __init__(self, device="cpu"):
        self.size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.is_root = self.rank == 0
        self.device = torch.device(device)
        if self.size > 1 and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend)

    def close(self):
        if self.size > 1 and dist.is_initialized():
            dist.destroy_process_group()

    def broadcast_tensors(self, tensors):
        """Everyone takes rank 0's values (weights after fill/--weights/restore)."""
        if self.size > 1 and tensors:
            # one flat buffer: one collective, and any memory layout (channels-last) is fine
            flat = torch.cat([t.reshape(-1) for t in tensors])
            dist.broadcast(flat, src=0)
            offset = 0
            for t in tensors:
                t.copy_(flat[offset:offset + t.numel()].view(t.shape))
                offset += t.numel()

    def broadcast_flag(self, flag):
        if self.size == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    def broadcast_int(self, value):
        if self.size == 1:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return int(t.item())

    def allreduce_gradients(self, diffs, diverged, action):
        """Average the diffs over ranks in place, in one flat buffer with two flags appended:
        whether any rank's loss diverged, and rank 0's signal action (others send none).
        Returns (diverged anywhere, action)."""
        flat = torch.cat([d.reshape(-1) for d in diffs] + [
            torch.tensor([1.0 if diverged else 0.0,
                          float(ACTION_CODES[action] - ACTION_CODES[NONE])],
                         device=diffs[0].device, dtype=diffs[0].dtype)])
        dist.all_reduce(flat)
        n = flat.numel() - 2
        flags = flat[n:].tolist()
        flat = flat[:n].div_(self.size)
        offset = 0
        for d in diffs:
            d.copy_(flat[offset:offset + d.numel()].view(d.shape))
            offset += d.numel()
        action = EFFECTS[int(round(flags[1])) + ACTION_CODES[NONE]]
        return flags[0] > 0, action
