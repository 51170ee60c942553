"""GAE throughput: fgrlhf.core.gae (vectorised over the batch, one step per column) against
a plain Python loop over time (per row, per token, Python floats from .tolist()).

Batch: [256, 512] float32, random right padding, gamma = 1, lam = 0.95. Checks that both
give the same advantages, then prints ms per call (median of the repeats) and the speed-up.
The Python loop runs on all rows by default; with --python-rows N it is timed on the first
N rows and scaled linearly to the full batch (the printout then says so). A speed-up below
1 means the torch version is the slower one. On a CUDA
machine the torch version is timed on the GPU too.

    .venv/bin/python bench/bench_gae.py [--repeats 7] [--python-rows 256]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fgrlhf.core import gae

B, T = 256, 512
GAMMA, LAM = 1.0, 0.95


def make_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(B, T, generator=g)  # [B, T]
    values = torch.randn(B, T, generator=g)  # [B, T]
    lengths = torch.randint(1, T + 1, (B,), generator=g)  # [B] random right padding
    mask = torch.arange(T)[None, :] < lengths[:, None]  # [B, T]
    return rewards, values, mask


def python_gae(rewards: list[list[float]], values: list[list[float]], mask: list[list[bool]],
               gamma: float, lam: float) -> list[list[float]]:
    """Per row, backwards over time, skipping padded tokens: pure Python floats."""
    out = []
    for r_row, v_row, m_row in zip(rewards, values, mask):
        n = len(r_row)
        adv = [0.0] * n
        next_value = 0.0
        next_adv = 0.0
        for t in range(n - 1, -1, -1):
            if not m_row[t]:
                continue
            v = v_row[t]
            a = r_row[t] + gamma * next_value - v + gamma * lam * next_adv
            adv[t] = a
            next_value = v
            next_adv = a
        out.append(adv)
    return out


def time_it(fn, repeats: int, sync=None) -> float:
    """Median wall time of fn() in ms over `repeats` runs (after one warm-up run)."""
    fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--python-rows", type=int, default=B,
                        help="rows of the batch the Python loop is timed on (scaled to all 256)")
    args = parser.parse_args()
    rows = max(1, min(args.python_rows, B))

    rewards, values, mask = make_batch()
    print(f"GAE on a [{B}, {T}] float32 batch, random right padding "
          f"({int(mask.sum())} real tokens of {B * T}), gamma={GAMMA}, lam={LAM}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, median of {args.repeats} repeats")

    # Correctness: the full batch through both.
    adv_torch, _ = gae(rewards, values, mask, gamma=GAMMA, lam=LAM)
    r_l, v_l, m_l = rewards.tolist(), values.tolist(), mask.tolist()
    adv_py = torch.tensor(python_gae(r_l, v_l, m_l, GAMMA, LAM), dtype=torch.float32)
    same = torch.allclose(adv_torch, adv_py, atol=1e-4, rtol=1e-4)
    max_diff = (adv_torch - adv_py).abs().max().item()
    print(f"same advantages (torch.allclose, atol=rtol=1e-4): {same}; max abs diff {max_diff:.3e}")
    if not same:
        raise SystemExit("torch and Python GAE disagree")

    # Python loop: timed on `rows` rows (data already converted with .tolist()), scaled to B.
    sub = (r_l[:rows], v_l[:rows], m_l[:rows])
    py_sub_ms = time_it(lambda: python_gae(*sub, GAMMA, LAM), args.repeats)
    py_ms = py_sub_ms * B / rows
    scaled = "" if rows == B else f" (timed on {rows} rows: {py_sub_ms:.1f} ms, scaled x{B / rows:g} to {B})"
    print(f"python loop        : {py_ms:9.2f} ms/call{scaled}")
    tolist_ms = time_it(lambda: (rewards.tolist(), values.tolist(), mask.tolist()), args.repeats)
    print(f"  (.tolist() of the three [{B}, {T}] tensors, not included above: {tolist_ms:.2f} ms)")

    cpu_ms = time_it(lambda: gae(rewards, values, mask, gamma=GAMMA, lam=LAM), args.repeats)
    print(f"fgrlhf gae (cpu)   : {cpu_ms:9.2f} ms/call   speed-up vs python: {py_ms / cpu_ms:6.2f}x")
    print(f"  (vs python loop + .tolist(): {(py_ms + tolist_ms) / cpu_ms:.2f}x)")

    if torch.cuda.is_available():
        dev = torch.device("cuda")
        r, v, m = rewards.to(dev), values.to(dev), mask.to(dev)
        adv_cuda, _ = gae(r, v, m, gamma=GAMMA, lam=LAM)
        cuda_diff = (adv_cuda.cpu() - adv_py).abs().max().item()
        cuda_ms = time_it(lambda: gae(r, v, m, gamma=GAMMA, lam=LAM), args.repeats, sync=torch.cuda.synchronize)
        print(f"fgrlhf gae (cuda)  : {cuda_ms:9.2f} ms/call   speed-up vs python: {py_ms / cuda_ms:6.2f}x "
              f"({torch.cuda.get_device_name()}; max abs diff vs python {cuda_diff:.3e})")
    else:
        print("fgrlhf gae (cuda)  : skipped, CUDA not available")


if __name__ == "__main__":
    main()
