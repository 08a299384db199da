#!/usr/bin/python3
"""Remote volumes (issue 17): planes of a store served over HTTP with 20 ms of
added latency per request, read through `brickfs mount http://...`, against
what the same bytes cost by other means, all in one run:

  cold  = a fresh mount with an empty cache reads the middle plane of an axis;
          baseline: curl downloading exactly the byte ranges that read fetched
          (from nginx's access log), all in parallel (--parallel-max 8, the
          mount's requests in flight), through the same latency proxy
  warm  = a second mount of the same URL (the cache filled, the block cache
          empty) reads the same plane; baseline: a read-only mount of the
          local store reads it

Prints seconds and the ratios brickfs / baseline (lower is better). The store
is written by brickfs (create + mount + cp), the server is nginx on 127.0.0.1,
the latency comes from tests/integration/remote_server.FaultProxy.

usage: remote_bench.py --brickfs build/brickfs [--work DIR] [--shape 64,512,512]
                       [--block 32,32,32] [--brick 64,256,256] [--latency-ms 20]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import brickfs_testlib as T  # noqa: E402
import remote_server as RS  # noqa: E402

AXES = ("z", "y", "x")


def triple(text):
    v = tuple(int(p) for p in text.split(","))
    if len(v) != 3:
        raise argparse.ArgumentTypeError("expected Z,Y,X")
    return v


def read_plane(mnt, axis, i):
    t = time.perf_counter()
    with open(os.path.join(mnt, axis, T.canonical(i)), "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass
    return time.perf_counter() - t


def curl_ranges(reqs, base, work):
    """Seconds for curl to fetch the (path, range) of `reqs` from `base`, in parallel."""
    cfg = os.path.join(work, "curl.cfg")
    entries = []
    for q in reqs:
        e = 'url = "%s%s"\noutput = "/dev/null"\n' % (base, q["path"])
        if q["range"]:
            e += 'range = "%s"\n' % q["range"][len("bytes="):]
        entries.append(e)
    with open(cfg, "w") as f:
        f.write("next\n".join(entries))
    t = time.perf_counter()
    subprocess.run(["curl", "--parallel", "--parallel-max", "8", "-s", "-K", cfg],
                   check=True, timeout=300)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brickfs", required=True)
    ap.add_argument("--work", default=None)
    ap.add_argument("--shape", type=triple, default=(64, 512, 512))
    ap.add_argument("--block", type=triple, default=(32, 32, 32))
    ap.add_argument("--brick", type=triple, default=(64, 256, 256))
    ap.add_argument("--latency-ms", type=int, default=20)
    args = ap.parse_args()
    os.environ["BRICKFS_BIN"] = os.path.abspath(args.brickfs)
    if not RS.have_nginx():
        sys.exit("nginx is not installed (Debian nginx-light)")
    work = args.work or tempfile.mkdtemp(prefix="brickfs-remote-bench-")
    os.makedirs(work, exist_ok=True)
    store = os.path.join(work, "srv", "v.zarr")
    if not os.path.exists(os.path.join(store, "zarr.json")):
        shutil.rmtree(os.path.join(work, "srv"), ignore_errors=True)
        vol = T.make_volume(args.shape, "uint16", kind="smooth", seed=5)
        RS.make_brickfs_store(work, store, vol, args.block, args.brick)
    rows = []
    with RS.Nginx(os.path.join(work, "srv"), os.path.join(work, "nginx")) as ng, \
            RS.FaultProxy(ng.port, latency_ms=args.latency_ms) as proxy:
        url = proxy.url + "/v.zarr"
        for axis in AXES:
            i = args.shape[AXES.index(axis)] // 2
            cache = os.path.join(work, "cache-" + axis)
            shutil.rmtree(cache, ignore_errors=True)
            mnt = os.path.join(work, "mnt-" + axis)
            with T.Mount(url, mnt, ["cache_dir=" + cache]) as m:
                mark = ng.mark()
                cold = read_plane(m.mnt, axis, i)
                reqs = ng.since(mark)
                m.umount()
            fetched = sum(q["bytes"] for q in reqs)
            curl = statistics.median(curl_ranges(reqs, proxy.url, work) for _ in range(3))
            with T.Mount(url, mnt, ["cache_dir=" + cache]) as m:
                warm = read_plane(m.mnt, axis, i)
                m.umount()
            with T.Mount(store, mnt, ["ro"]) as m:
                local = read_plane(m.mnt, axis, i)
                m.umount()
            rows.append((axis, i, len(reqs), fetched, cold, curl, warm, local))
    print("remote planes, %s uint16, block %s, brick %s, %d ms added per request"
          % ("x".join(map(str, args.shape)), ",".join(map(str, args.block)),
             ",".join(map(str, args.brick)), args.latency_ms))
    print("%-4s %6s %5s %10s %9s %9s %7s %9s %9s %7s" % (
        "axis", "plane", "reqs", "bytes", "cold s", "curl s", "ratio", "warm s", "local s", "ratio"))
    for axis, i, n, fetched, cold, curl, warm, local in rows:
        print("%-4s %6d %5d %10d %9.3f %9.3f %7.2f %9.4f %9.4f %7.2f" % (
            axis, i, n, fetched, cold, curl, cold / curl, warm, local, warm / local))


if __name__ == "__main__":
    main()
