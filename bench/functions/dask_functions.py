#!/usr/bin/env python3
"""Per-task overhead of Dask (distributed) for the same workloads as sluice_functions:
N no-op tasks, independent or one chain, on a LocalCluster of this machine.

    dask_functions.py --shape indep|chain --n N [--workers W] [--threads T]

Prints: workload=functions tool=dask shape=... n=... wall_s=... us_per_task=... ok=1
"""
import argparse
import time


def noop(*_):
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="indep")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    from dask.distributed import Client, LocalCluster, wait

    with LocalCluster(n_workers=a.workers, threads_per_worker=a.threads, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        if a.shape == "chain":
            f = client.submit(noop, pure=False)
            for _ in range(a.n - 1):
                f = client.submit(noop, f, pure=False)
            futures = [f]
        else:
            futures = client.map(noop, range(a.n), pure=False)
        wait(futures)
        ok = all(f.status == "finished" for f in futures)
        wall = time.perf_counter() - t0
    print(f"workload=functions tool=dask shape={a.shape} result=0 n={a.n} wall_s={wall:.3f} "
          f"us_per_task={wall * 1e6 / a.n:.2f} ok={int(ok)}")


if __name__ == "__main__":
    main()
