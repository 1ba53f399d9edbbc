"""Run synevo's benchmark suite and print its tables: `python -m benchmarks [--quick]`.

Sections (all by default): `evaluation` (synevo vs EvoTorch GymNE/VecGymNE), `targets`
(synevo vs the environments alone), `ray` (seconds per generation, in-process vs workers),
`memory` (peak RSS of a generation), `sampling` (synaptogenesis samplers vs a per-gene-pair
reference), `products` (torch's and numpy's matrix products at synevo's shapes). Every ratio
compares figures measured in this run; the load average printed with each row says how busy
the machine was. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time

import numpy as np
import torch

from synevo.threads import set_threads

SECTIONS = ("evaluation", "targets", "ray", "memory", "sampling", "products")


def sampling_tables(quick: bool) -> list[str]:
    """Networks/s of the samplers, as benchmarks/sampling.py measures them."""
    from benchmarks.common import load, table
    from benchmarks.sampling import LARGE, SMALL, measure

    rows = []
    cases = [(f"4-128-2 G={g}", SMALL, g) for g in (16, 32, 64)]
    cases.append(("1024-1024 G=16", LARGE, 16))
    for label, sizes, genes in cases:
        note = load()
        large = sizes == LARGE
        samplers = ["fast"] if large and quick else ["reference", "exact", "fast"]
        batch, repeats = (1, 1) if large else ((8, 1) if quick else (16, 3))
        seconds = measure(sizes, genes, batch, repeats, samplers)
        reference = seconds.get("reference", (None,))[0]
        for name, (cpu, wall) in seconds.items():
            ratio = "n/m" if reference is None else f"{reference / cpu:.1f}x"
            rows.append([label, name, f"{1 / cpu:.2f}", ratio, f"{cpu:.4f}", f"{wall:.4f}", note])
    header = ["network", "sampler", "networks/s", "vs reference", "CPU s/net", "wall s/net"]
    header += ["load"]
    title = "Sampled synaptogenesis at degree 1e5, 1 torch thread (rates from CPU time)"
    return [table(title, header, rows)]


def machine() -> str:
    """CPU model, cores, torch and numpy with their BLAS, and the load average."""
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as info:
            names = [line.split(":", 1)[1].strip() for line in info if "model name" in line]
            cpu = names[0] if names else cpu
    blas = ", ".join(
        f"{lib['internal_api']} {lib.get('version', '?')} ({lib.get('architecture', '?')})"
        for lib in threadpool_info()
        if lib["user_api"] == "blas"
    )
    loads = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__} (BLAS "
        f"{torch.backends.mkl.is_available() and 'MKL' or 'not MKL'}), numpy {np.__version__} "
        f"(BLAS {blas or '?'}); load {loads}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 3 minutes")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (0: no Ray)")
    args = parser.parse_args()

    set_threads(1)  # torch and numpy BLAS
    start = time.perf_counter()
    print(f"synevo benchmarks{' (quick)' if args.quick else ''}: {machine()}", flush=True)
    uses_ray = args.workers > 0 and {"ray", "targets"} & set(args.sections)
    if uses_ray:
        from synevo.distributed import init_ray

        init_ray(num_cpus=args.workers)
    try:
        for section in args.sections:
            for text in _section(section, args.quick, args.workers):
                print(f"\n{text}", flush=True)
    finally:
        if uses_ray:
            from synevo.distributed import shutdown_ray

            shutdown_ray()
    print(f"\ntotal {time.perf_counter() - start:.0f} s", flush=True)


def _section(name: str, quick: bool, workers: int) -> list[str]:
    if name == "evaluation":
        from benchmarks import evaluation

        return evaluation.run(quick)
    if name == "targets":
        from benchmarks import targets

        return targets.run(quick, workers)
    if name == "ray":
        from benchmarks import distributed

        return distributed.run(quick, workers) if workers else ["ray: skipped (--workers 0)"]
    if name == "memory":
        from benchmarks import memory

        return memory.run(quick)
    if name == "products":
        from benchmarks import products

        return products.run(quick)
    return sampling_tables(quick)


if __name__ == "__main__":
    main()
