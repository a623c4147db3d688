"""Cost of one-pass SGD: the N-dimensional simulation (`simulate`, numpy) against the exact per-group
overlap chain (`chain.simulate_groups`, numba), in SGD steps per second of one seed.

Run: python bench/bench_sgd.py [--quick]   (writes the tables to stdout; bench/results_sgd.md keeps a run)
Both methods are timed in the same run on the same machine, each with one seed on one thread; the
table reports their ratio.  Wall and CPU seconds are both given (CPU: process time, all threads),
since the machine may be shared.  Compilation is excluded (a warm-up run loads numba's cache).
"""
import argparse
import os
import time

from exactdyn import power_law
from exactdyn.problem import Problem
from exactdyn.simulate.chain import simulate_groups
from exactdyn.simulate.sgd import simulate


def timed(run, steps, N):
    wall, cpu = time.perf_counter(), time.process_time()
    run([0, steps / N])
    return steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)


def case(K, L, N, eta=0.5):
    problem = Problem("erf", K, K, power_law(L, 1), "1/2")
    lam, frac = problem.spectrum.floats()
    full = lambda alpha: simulate(problem.structure, lam, frac, eta, alpha, N=N, seeds=[0], sigma_J=0.5)
    chain = lambda alpha: simulate_groups(problem.structure, lam, frac, eta, alpha, N=N, seeds=[0], sigma_J=0.5)
    return full, chain


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    case(2, 4, 256)[1]([0, 1])  # warm-up: load or compile the kernel
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("## Steps per second against N (erf, K = M = 2, L = 4, one seed)\n")
    print("| N | simulate (wall) | chain (wall) | ratio wall | simulate (CPU) | chain (CPU) | ratio CPU |")
    print("|---|---|---|---|---|---|---|")
    for N in (256, 1024, 4096, 16384, 65536):
        full, chain = case(2, 4, N)
        f_wall, f_cpu = timed(full, max(200, 4_000_000 // N // scale), N)
        c_wall, c_cpu = timed(chain, 400_000 // scale, N)
        print(f"| {N} | {f_wall:,.0f} | {c_wall:,.0f} | {c_wall / f_wall:,.1f} | {f_cpu:,.0f} | {c_cpu:,.0f} | "
              f"{c_cpu / f_cpu:,.1f} |", flush=True)
    print("\n## The chain against K (= M) and L (erf, N = 65536, one seed)\n")
    print("| K | L | chain steps/s (wall) | (CPU) | CPU per step and group, us | simulate steps/s (CPU) | ratio CPU |")
    print("|---|---|---|---|---|---|---|")
    for K in (1, 2, 4):
        for L in (1, 4, 16, 64):
            full, chain = case(K, L, 65536)
            c_wall, c_cpu = timed(chain, 400_000 // L // scale * 4, 65536)
            f_cpu = timed(full, 2000 // scale, 65536)[1]
            print(f"| {K} | {L} | {c_wall:,.0f} | {c_cpu:,.0f} | {1e6 / c_cpu / L:.2f} | {f_cpu:,.0f} | "
                  f"{c_cpu / f_cpu:,.0f} |", flush=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
