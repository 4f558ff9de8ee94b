"""The `nuisance bench correction` training in plain PyTorch (run by hand, not in CI).

Same task and settings as src/bench/correction.rs: 200k simulated events with 10 features
(labels ~ Bernoulli(0.5), class 0 ~ N(0, Σ), class 1 ~ N(0.5·1, Σ), Σ_ij = 0.5^|i−j|), the
pseudo-data a distorted independent draw (features 0–4: x·(1 + 0.05·(1 + x0/4)) + 0.2,
features 5–9: 1.2·x), its 10 marginals the targets. The correction T(x) = x + σ ⊙ r(x) with
r = 10→64→64→10 (tanh, last layer zero), inputs standardised; loss per minibatch of 2048:
Σ_j mean_i((sort(T_j)_i − Q_j((i + ½)/B))/σ_j)² + 0.1 · mean_i Σ_j r_ij²; Adam 3e-3; at most
40 epochs, converged when the epoch loss falls by less than 0.5 % for 3 epochs in a row.

    /work/torchenv/bin/python scripts/correction_torch.py [--threads 2] [--epochs N]

Prints one JSON line like the bench: seconds to convergence, epochs, events·epochs/s.
"""
import argparse
import json
import time

import numpy as np
import torch

N, D, BATCH, LR, LAMBDA, MAX_EPOCHS, TOL, PATIENCE = 200_000, 10, 2048, 3e-3, 0.1, 40, 5e-3, 3


def gaussians(n, seed):
    rng = np.random.default_rng(seed)
    cov = 0.5 ** np.abs(np.subtract.outer(np.arange(D), np.arange(D)))
    y = rng.integers(0, 2, n)
    x = rng.multivariate_normal(np.zeros(D), cov, n) + 0.5 * y[:, None]
    return x.astype(np.float32)


def distort(x):
    out = x.copy()
    out[:, :5] = x[:, :5] * (1.0 + 0.05 * (1.0 + x[:, :1] / 4.0)) + 0.2
    out[:, 5:] = 1.2 * x[:, 5:]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=MAX_EPOCHS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    sim = torch.from_numpy(gaussians(N, 11))
    target = np.sort(distort(gaussians(N, 12)), axis=0)
    # target quantiles at the midpoints of a full batch (the last, shorter batch gets its own)
    u_full = (np.arange(BATCH) + 0.5) / BATCH
    tq = lambda u: torch.from_numpy(
        np.stack([np.interp(u, (np.arange(N) + 0.5) / N, target[:, j]) for j in range(D)], axis=1).astype(np.float32))
    q_full = tq(u_full)
    rest = N % BATCH
    q_rest = tq((np.arange(rest) + 0.5) / rest) if rest else None
    mean, sigma = sim.mean(0), sim.std(0)
    net = torch.nn.Sequential(torch.nn.Linear(D, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                              torch.nn.Linear(64, D))
    with torch.no_grad():
        net[4].weight.zero_()
        net[4].bias.zero_()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    history, stalled = [], 0
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        perm = torch.randperm(N)
        total, batches = 0.0, 0
        for start in range(0, N, BATCH):
            x = sim[perm[start:start + BATCH]]
            r = net((x - mean) / sigma)
            t = x + sigma * r
            q = q_full if x.shape[0] == BATCH else q_rest
            dist = (((torch.sort(t, dim=0).values - q) / sigma) ** 2).mean(0).sum()
            loss = dist + LAMBDA * (r ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        history.append(total / batches)
        if len(history) > 1:
            gain = history[-2] - history[-1]
            stalled = stalled + 1 if gain < TOL * abs(history[-2]) else 0
            if stalled >= PATIENCE:
                break
    secs = time.perf_counter() - t0
    print(json.dumps({"bench": "correction_torch", "seconds_to_convergence": secs, "epochs": len(history),
                      "events_epochs_per_s": N * len(history) / secs, "final_objective": history[-1],
                      "threads": args.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
