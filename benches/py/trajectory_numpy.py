"""The dynamic trajectory optimizer of seed 002 as a straightforward vectorized
NumPy enumeration, for `kf-bench optimize` to time against the Rust one.

Usage: trajectory_numpy.py INSTANCE.json
Prints: best_sharpe seconds trajectories

The instance holds `units` (K), `mu` (H x N), `cov` (H x N x N), `cost` (H x N) and
`start` (N). The script builds Omega (every split of K units among N assets, every
sign pattern of the nonzero weights), then scores every trajectory of Omega^H in
chunks: the trajectory's weights are gathered into an array of shape
(chunk, H, N), and returns, variances and square-root costs are computed with
array operations, horizon by horizon, exactly as the seed's blueprint describes.
"""

import itertools
import json
import sys
import time

import numpy as np


def omega(n, k):
    out = []
    for split in itertools.product(range(k + 1), repeat=n):
        if sum(split) != k:
            continue
        nonzero = [i for i in range(n) if split[i]]
        for signs in itertools.product((1, -1), repeat=len(nonzero)):
            w = list(split)
            for s, i in zip(signs, nonzero):
                w[i] *= s
            out.append(w)
    return np.array(out, dtype=np.float64) / k


def main():
    with open(sys.argv[1]) as f:
        inst = json.load(f)
    k = int(inst["units"])
    mu = np.array(inst["mu"], dtype=np.float64)
    cov = np.array(inst["cov"], dtype=np.float64)
    cost = np.array(inst["cost"], dtype=np.float64)
    start = np.array(inst["start"], dtype=np.float64)
    h, n = mu.shape
    started = time.perf_counter()
    w = omega(n, k)
    m = len(w)
    total = m**h
    chunk = 1 << 18
    best = -np.inf
    for lo in range(0, total, chunk):
        idx = np.arange(lo, min(lo + chunk, total), dtype=np.int64)
        # Digits of the trajectory index, horizon 1 most significant.
        digits = np.empty((len(idx), h), dtype=np.int64)
        rest = idx
        for d in range(h - 1, -1, -1):
            digits[:, d] = rest % m
            rest = rest // m
        traj = w[digits]  # (chunk, H, N)
        num = np.zeros(len(idx))
        var = np.zeros(len(idx))
        prev = np.broadcast_to(start, (len(idx), n))
        for d in range(h):
            x = traj[:, d, :]
            num += x @ mu[d] - np.sqrt(np.abs(x - prev)) @ cost[d]
            var += ((x @ cov[d]) * x).sum(axis=1)
            prev = x
        sr = num / np.sqrt(var)
        best = max(best, float(sr.max()))
    seconds = time.perf_counter() - started
    print(f"{best!r} {seconds} {total}")


if __name__ == "__main__":
    main()
