"""Data parallelism for PPO over accelerate processes.

Each process generates and scores the rollouts of its share of the prompts; then every
process gathers the whole batch (token ids, log-probs, values, rewards: small ``[B, T]``
tensors) so that advantage whitening, the KL controller, the minibatch permutation and the
early stop see exactly what one process with the same global batch would see. In the update,
each process runs forward and backward on its rows of every minibatch; losses are divided by
the whole minibatch's count (``loss_denominator``), so the processes' gradients, averaged by
DDP and multiplied back by the world size, are the one-process gradient.

``Parallel`` is the single place that knows about processes; with ``accelerator=None`` it is
one process and every collective is the identity.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor


class Parallel:
    """Rank, world size and the few collectives PPO needs, over an optional ``Accelerator``."""

    def __init__(self, accelerator=None) -> None:
        self.accelerator = accelerator
        self.rank = accelerator.process_index if accelerator is not None else 0
        self.world = accelerator.num_processes if accelerator is not None else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This process's contiguous block of ``n`` items (concatenating the blocks in rank
        order gives back the one-process order). ``n`` must divide evenly."""
        if n % self.world:
            raise ValueError(f"{n} prompts per iteration cannot be split evenly over {self.world} processes; "
                             f"make task.prompts_per_iteration a multiple of {self.world}")
        size = n // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def prepare(self, *objs):
        if self.accelerator is None:
            return objs if len(objs) > 1 else objs[0]
        return self.accelerator.prepare(*objs)

    def autocast(self):
        return self.accelerator.autocast() if self.accelerator is not None else contextlib.nullcontext()

    def backward(self, loss: Tensor) -> None:
        if self.accelerator is None:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    @contextlib.contextmanager
    def no_sync(self, *models) -> Iterator[None]:
        """Skip DDP's gradient all-reduce (all micro-steps of a minibatch but the last)."""
        with contextlib.ExitStack() as stack:
            if self.accelerator is not None and self.world > 1:
                for m in models:
                    stack.enter_context(self.accelerator.no_sync(m))
            yield

    def clip_grad_norm_(self, params, max_norm: float) -> Tensor:
        if self.accelerator is None:
            return torch.nn.utils.clip_grad_norm_(params, max_norm)
        return self.accelerator.clip_grad_norm_(params, max_norm)

    def sum(self, x: Tensor) -> Tensor:
        """Element-wise sum over processes."""
        if self.world == 1:
            return x
        x = x.clone()
        torch.distributed.all_reduce(x)
        return x

    def gather_objects(self, items: Sequence[Any]) -> list[Any]:
        """Concatenate every process's ``items`` in rank order."""
        if self.world == 1:
            return list(items)
        from accelerate.utils import gather_object

        return list(gather_object(list(items)))

    def gather_rows(self, x: Tensor, pad_value: float | int = 0, pad_first: bool = False) -> Tensor:
        """``[b, L, ...]`` on each process → ``[world·b, max L, ...]`` on every process, padding
        dim 1 with ``pad_value`` (at the start when ``pad_first``: left-padded prompts)."""
        if self.world == 1:
            return x
        width_t = torch.tensor([x.shape[1]], device=x.device)
        torch.distributed.all_reduce(width_t, op=torch.distributed.ReduceOp.MAX)
        width = int(width_t)
        dtype = x.dtype
        y = x.to(torch.uint8) if dtype == torch.bool else x  # gloo has no bool collectives
        if y.shape[1] < width:
            pad = y.new_full((y.shape[0], width - y.shape[1], *y.shape[2:]), pad_value)
            y = torch.cat([pad, y] if pad_first else [y, pad], dim=1)
        parts = [torch.empty_like(y) for _ in range(self.world)]
        torch.distributed.all_gather(parts, y.contiguous())
        out = torch.cat(parts, dim=0)
        return out.bool() if dtype == torch.bool else out

    def from_main(self, obj: Any) -> Any:
        """The main process's ``obj`` (picklable) on every process."""
        if self.world == 1:
            return obj
        from accelerate.utils import broadcast_object_list

        box = [obj]
        broadcast_object_list(box, from_process=0)
        return box[0]

    def divergence(self, params) -> float:
        """Largest difference between processes of any parameter tensor's sum: 0.0 while the
        processes hold the same weights (they must; a non-zero value means they drifted)."""
        if self.world == 1:
            return 0.0
        sums = torch.stack([p.detach().double().sum() for p in params]).cpu()  # [n_params]
        rows = torch.stack([torch.as_tensor(x) for x in self.gather_objects([sums])])  # [world, n_params]
        return float((rows.max(dim=0).values - rows.min(dim=0).values).max())

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()
