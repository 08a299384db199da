#!/usr/bin/python3
"""Remote stores at the storage level (issue 17, src/remote): a store written by
brickfs is served by a real nginx on 127.0.0.1 (and through a fault-injecting
proxy), and read through HttpStorage by tests/integration/remote_probe (one
process = one mount). Checks that every byte read is the file's, that blocks
are fetched with few coalesced range requests over reused connections, that
the cache serves a second session without data requests, offline mode, 404s,
auth, HTTPS + HTTP/2, and that faults (503 bursts, 429 + Retry-After, dropped
connections, truncated, stalled or over-long bodies, a server ignoring Range, a
wrong Content-Range, a file changed under the same URL) end in a correct read
after retries or in an error within the deadline, never in wrong or cached
bad bytes.

    /usr/bin/python3 tests/integration/test_remote_storage.py --brickfs build/brickfs \
        [--probe build/tests/remote_probe] [-k name]
"""
import errno
import json
import os
import shutil
import struct
import sys
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402
import remote_server as RS  # noqa: E402
import shard_reader  # noqa: E402

SHAPE = (40, 96, 100)
BLOCK = (8, 16, 16)
BRICK = (16, 32, 32)
EMPTY = 0xFFFFFFFFFFFFFFFF
_PROBE = {"path": None}


def probe_bin():
    if _PROBE["path"]:
        return _PROBE["path"]
    env = os.environ.get("BRICKFS_REMOTE_PROBE")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.abspath(T.brickfs_bin())), "tests", "remote_probe")


def run_probe(url, cache, lines, args=(), timeout=180):
    """Runs remote_probe with `lines` as its script; returns (list of outputs, Ran)."""
    argv = [probe_bin(), "--url", url, "--cache-dir", cache] + list(args)
    r = T.run(argv, timeout=timeout, stdin_data=("\n".join(lines) + "\n").encode())
    out = []
    for line in r.stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out, r


def shard_index(data, n_blocks):
    """(offset, nbytes) per block from a shard's bytes (index at the end + crc32c)."""
    ib = data[len(data) - (16 * n_blocks + 4):len(data) - 4]
    return [struct.unpack_from("<QQ", ib, 16 * i) for i in range(n_blocks)]


class RemoteStorageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        T.require_fuse()
        if not RS.have_nginx():
            raise unittest.SkipTest("nginx is not installed (Debian nginx-light)")
        if not os.path.exists(probe_bin()):
            raise unittest.SkipTest("remote_probe not built: %s" % probe_bin())
        cls.root = T.TempRoot("brickfs-remote-")
        cls.vol = T.make_volume(SHAPE, "uint16", kind="smooth", seed=17)
        cls.vol[:16, :32, :32] = 0   # brick (0,0,0) is all fill: no shard file (404)
        cls.store = RS.make_brickfs_store(cls.root.join(), cls.root.join("srv", "v.zarr"),
                                          cls.vol, BLOCK, BRICK)
        cls.meta = shard_reader.meta_of(cls.store, "0")
        cls.n_blocks = cls.meta.n_index
        cls.shards = {}   # key -> bytes
        for coord in np.ndindex(*cls.meta.shard_grid()):
            p = cls.meta.shard_path(coord)
            key = os.path.relpath(p, cls.store)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    cls.shards[key] = f.read()
        cls.absent = os.path.join("0", "c", "0", "0", "0")
        assert cls.absent not in cls.shards, "the all-fill brick has a shard file"
        cls.nginx = RS.Nginx(cls.root.join("srv"), cls.root.join("nginx"))
        cls.nginx.__enter__()
        cls.url = cls.nginx.url + "/v.zarr"

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "nginx", None):
            cls.nginx.stop()
        if getattr(cls, "root", None):
            cls.root.cleanup()

    def cache(self, name):
        d = self.root.join("caches", name)
        shutil.rmtree(d, ignore_errors=True)
        return d

    # ---- helpers
    def block_ranges(self, key, data=None):
        data = self.shards[key] if data is None else data
        return [(o, n) for o, n in shard_index(data, self.n_blocks) if o != EMPTY]

    def ranges_cmd(self, key, ranges):
        return "ranges %s %s" % (key, ",".join("%d:%d" % r for r in ranges))

    def index_bytes(self):
        return 16 * self.n_blocks + 4

    def read_all_lines(self):
        """A script reading everything: metadata, every shard's index and blocks."""
        lines = ["get zarr.json", "get 0/zarr.json"]
        for key in sorted(self.shards):
            lines.append("tail %s %d" % (key, self.index_bytes()))
            lines.append(self.ranges_cmd(key, self.block_ranges(key)))
        return lines

    def check_all(self, out, what):
        """The outputs of read_all_lines() against the files."""
        self.assertEqual(len(out), 2 + 2 * len(self.shards), what)
        for i, name in enumerate(["zarr.json", "0/zarr.json"]):
            self.assertEqual(out[i]["code"], "OK", (what, out[i]))
            with open(os.path.join(self.store, name), "rb") as f:
                self.assertEqual(bytes.fromhex(out[i]["hex"]), f.read(), (what, name))
        for j, key in enumerate(sorted(self.shards)):
            tail, ranges = out[2 + 2 * j], out[3 + 2 * j]
            data = self.shards[key]
            self.assertEqual(tail["code"], "OK", (what, key, tail))
            self.assertEqual(tail["size"], len(data), (what, key))
            self.assertEqual(bytes.fromhex(tail["hex"]), data[-self.index_bytes():], (what, key))
            self.assertEqual(ranges["code"], "OK", (what, key, ranges.get("message")))
            for (o, n), h in zip(self.block_ranges(key), ranges["hex"]):
                self.assertEqual(bytes.fromhex(h), data[o:o + n], (what, key, o, n))
            self.assertEqual(set(ranges["visits"]), {1}, (what, key, "each range visited once"))

    # ---- reading through nginx
    def test_reads_are_the_files_bytes_with_coalesced_requests(self):
        cache = self.cache("plain")
        mark = self.nginx.mark()
        out, r = run_probe(self.url, cache, self.read_all_lines() + ["stats"])
        self.assertTrue(r.ok, r.describe())
        self.check_all(out[:-1], "cold")
        reqs = self.nginx.since(mark)
        data_reqs = [q for q in reqs if q["range"] and not q["range"].startswith("bytes=-")]
        # One request per shard for its blocks (the dead index between two
        # appends is bridged), never more than two.
        per_shard = {}
        for q in data_reqs:
            per_shard[q["path"]] = per_shard.get(q["path"], 0) + 1
        self.assertEqual(len(per_shard), len(self.shards))
        self.assertLessEqual(max(per_shard.values()), 2, per_shard)
        wanted = sum(n for key in self.shards for _, n in self.block_ranges(key))
        fetched = sum(q["bytes"] for q in data_reqs)
        self.assertGreaterEqual(fetched, wanted)
        self.assertLessEqual(fetched, 1.1 * wanted, (fetched, wanted))
        # Keep-alive: all of it over at most max_in_flight (8) connections.
        conns = {q["conn"] for q in reqs}
        self.assertLessEqual(len(conns), 8, "connections not reused: %d" % len(conns))
        self.assertEqual(out[-1]["http"]["retries"], 0)

    def test_second_session_reads_from_the_cache_with_revalidation_only(self):
        cache = self.cache("second")
        out, r = run_probe(self.url, cache, self.read_all_lines())
        self.assertTrue(r.ok, r.describe())
        self.check_all(out, "first")
        mark = self.nginx.mark()
        out, r = run_probe(self.url, cache, self.read_all_lines() + ["stats"])
        self.assertTrue(r.ok, r.describe())
        self.check_all(out[:-1], "second")
        reqs = self.nginx.since(mark)
        # Only the metadata's revalidation, answered 304 without a body: the
        # unchanged group document vouches for the cached shards.
        self.assertEqual(sorted(q["path"] for q in reqs), ["/v.zarr/0/zarr.json", "/v.zarr/zarr.json"],
                         reqs)
        for q in reqs:
            self.assertEqual(q["status"], 304, q)
            self.assertEqual(q["bytes"], 0, q)
            self.assertNotEqual(q["if_none_match"], "", q)
        self.assertEqual(out[-1]["cache"]["inserts"], 0, out[-1])
        # Without the group document, each shard is revalidated on its own.
        mark = self.nginx.mark()
        out, r = run_probe(self.url, cache, self.read_all_lines()[1:])
        self.assertTrue(r.ok, r.describe())
        reqs = self.nginx.since(mark)
        self.assertEqual(len(reqs), 1 + len(self.shards), reqs)
        self.assertEqual({q["status"] for q in reqs}, {304}, reqs)

    def test_a_changed_group_drops_what_was_cached_of_the_store(self):
        srv = self.root.join("srv-group")
        shutil.rmtree(srv, ignore_errors=True)
        shutil.copytree(self.root.join("srv"), srv)
        store = os.path.join(srv, "v.zarr")
        key = sorted(self.shards)[1]
        with RS.Nginx(srv, self.root.join("nginx-group")) as ng:
            url = ng.url + "/v.zarr"
            cache = self.cache("group")
            lines = ["get zarr.json", "tail %s %d" % (key, self.index_bytes()),
                     self.ranges_cmd(key, self.block_ranges(key))]
            out, r = run_probe(url, cache, lines)
            self.assertEqual([o["code"] for o in out], ["OK"] * 3, out)
            # A new version of the store: another shard under the same URL,
            # and its group document rewritten (as every brickfs session does).
            v2 = self.shards[sorted(self.shards)[2]]
            with open(os.path.join(store, key), "wb") as f:
                f.write(v2)
            group = os.path.join(store, "zarr.json")
            with open(group, "ab") as f:
                f.write(b" ")
            for p in (os.path.join(store, key), group):
                os.utime(p, (time.time() + 5, time.time() + 5))
            mark = ng.mark()
            out, r = run_probe(url, cache, ["get zarr.json", "tail %s %d" % (key, self.index_bytes()),
                                            self.ranges_cmd(key, self.block_ranges(key, v2))])
            self.assertEqual([o["code"] for o in out], ["OK"] * 3, out)
            self.assertEqual(bytes.fromhex(out[1]["hex"]), v2[-self.index_bytes():])
            for (o, n), h in zip(self.block_ranges(key, v2), out[2]["hex"]):
                self.assertEqual(bytes.fromhex(h), v2[o:o + n])
            reqs = ng.since(mark)
            self.assertEqual([q["status"] for q in reqs][:2], [200, 206], reqs)

    def test_cached_bytes_the_reader_refuses_are_fetched_again(self):
        cache = self.cache("refused")
        key = sorted(self.shards)[2]
        ranges = self.block_ranges(key)[:2]
        tail = "tail %s %d" % (key, self.index_bytes())
        out, r = run_probe(self.url, cache, [tail, self.ranges_cmd(key, ranges)])
        self.assertEqual([o["code"] for o in out], ["OK", "OK"], out)
        # From the cache, refused (a block failing its crc32c): an error, and
        # the bytes leave the cache.
        mark = self.nginx.mark()
        out, r = run_probe(self.url, cache, [tail, "refuse " + self.ranges_cmd(key, ranges)[7:]])
        self.assertEqual([o["code"] for o in out], ["OK", "Corruption"], out)
        self.assertFalse([q for q in self.nginx.since(mark) if q["range"] and not
                          q["range"].startswith("bytes=-")], "the first read came from the cache")
        mark = self.nginx.mark()
        out, r = run_probe(self.url, cache, [tail, self.ranges_cmd(key, ranges)])
        self.assertEqual([o["code"] for o in out], ["OK", "OK"], out)
        fetched = [q for q in self.nginx.since(mark) if q["path"].endswith("/" + key) and
                   q["range"] and not q["range"].startswith("bytes=-")]
        self.assertTrue(fetched, "the refused bytes were served from the cache again")
        data = self.shards[key]
        for (o, n), h in zip(ranges, out[1]["hex"]):
            self.assertEqual(bytes.fromhex(h), data[o:o + n])

    def test_offline_reads_only_the_cache(self):
        cache = self.cache("offline")
        key = sorted(self.shards)[0]
        ranges = self.block_ranges(key)
        out, r = run_probe(self.url, cache, ["get zarr.json", "tail %s %d" % (key, self.index_bytes()),
                                             self.ranges_cmd(key, ranges[:2]),
                                             "tail %s %d" % (self.absent, self.index_bytes())])
        self.assertTrue(r.ok, r.describe())
        self.assertEqual([o["code"] for o in out], ["OK", "OK", "OK", "NotFound"], out)
        mark = self.nginx.mark()
        other = sorted(self.shards)[1]
        out, r = run_probe(self.url, cache, [
            "get zarr.json", "tail %s %d" % (key, self.index_bytes()),
            self.ranges_cmd(key, ranges[:2]),
            "tail %s %d" % (self.absent, self.index_bytes()),
            self.ranges_cmd(key, ranges[2:3]),
            "tail %s %d" % (other, self.index_bytes()),
            "get 0/zarr.json"], args=["--offline"])
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(self.nginx.since(mark), [], "offline made requests")
        self.assertEqual([o["code"] for o in out[:4]], ["OK", "OK", "OK", "NotFound"], out)
        for o, what in ((out[4], "%d-" % ranges[2][0]), (out[5], other), (out[6], "0/zarr.json")):
            self.assertEqual(o["code"], "IOError", o)
            self.assertEqual(o["errno"], errno.EIO, o)
            self.assertIn("offline", o["message"])
            self.assertIn(self.url, o["message"])
            self.assertIn(what, o["message"])
        self.assertEqual(bytes.fromhex(out[2]["hex"][1]),
                         self.shards[key][ranges[1][0]:ranges[1][0] + ranges[1][1]])

    def test_missing_objects_are_not_found(self):
        out, r = run_probe(self.url, self.cache("missing"), [
            "tail %s %d" % (self.absent, self.index_bytes()), "get nothing/zarr.json",
            "size %s" % self.absent, "ranges %s 0:10" % self.absent, "get ../etc/passwd"])
        self.assertTrue(r.ok, r.describe())
        self.assertEqual([o["code"] for o in out],
                         ["NotFound", "NotFound", "NotFound", "NotFound", "InvalidArgument"], out)
        self.assertIn(self.url + "/0/c/0/0/0", out[0]["message"])

    def test_prefetch_fills_the_cache_and_readers_join_it(self):
        cache = self.cache("prefetch")
        keys = sorted(self.shards)[:3]
        lines = ["tail %s %d" % (k, self.index_bytes()) for k in keys]
        lines += ["prefetch %s %s" % (k, ",".join("%d:%d" % r for r in self.block_ranges(k)))
                  for k in keys]
        lines.append(self.ranges_cmd(keys[0], self.block_ranges(keys[0])))
        lines.append("idle")
        mark = self.nginx.mark()
        out, r = run_probe(self.url, cache, lines)
        self.assertTrue(r.ok, r.describe())
        self.assertTrue(all(o["code"] == "OK" for o in out), out)
        data_reqs = [q for q in self.nginx.since(mark)
                     if q["range"] and not q["range"].startswith("bytes=-")]
        # The read of keys[0] joined its prefetch: no second fetch of the same bytes.
        self.assertEqual(len(data_reqs), len({q["path"] for q in data_reqs}), data_reqs)
        # Everything prefetched is in the cache now.
        out, r = run_probe(self.url, cache, [self.ranges_cmd(k, self.block_ranges(k)) for k in keys],
                           args=["--offline"])
        self.assertTrue(all(o["code"] == "OK" for o in out), out)
        for k, o in zip(keys, out):
            for (off, n), h in zip(self.block_ranges(k), o["hex"]):
                self.assertEqual(bytes.fromhex(h), self.shards[k][off:off + n])

    def test_two_processes_share_one_cache(self):
        cache = self.cache("shared")
        lines = self.read_all_lines()
        procs = []
        for i in range(2):
            procs.append(T.subprocess.Popen(
                [probe_bin(), "--url", self.url, "--cache-dir", cache],
                stdin=T.subprocess.PIPE, stdout=T.subprocess.PIPE, stderr=T.subprocess.PIPE))
        outs = [p.communicate(("\n".join(lines) + "\n").encode(), timeout=180) for p in procs]
        for p, (so, se) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, se)
            self.check_all([json.loads(x) for x in so.decode().splitlines()], "concurrent")
        out, r = run_probe(self.url, cache, lines, args=["--offline"])
        self.check_all(out, "offline after two writers")

    def test_a_changed_object_is_never_served_stale(self):
        srv = self.root.join("srv-change")
        shutil.rmtree(srv, ignore_errors=True)
        shutil.copytree(self.root.join("srv"), srv)
        store = os.path.join(srv, "v.zarr")
        keys = sorted(self.shards)
        key, other = keys[1], keys[2]
        path = os.path.join(store, key)
        with RS.Nginx(srv, self.root.join("nginx-change")) as ng:
            url = ng.url + "/v.zarr"
            cache = self.cache("change")
            tail = "tail %s %d" % (key, self.index_bytes())
            out, r = run_probe(url, cache, [tail, self.ranges_cmd(key, self.block_ranges(key))])
            self.assertEqual([o["code"] for o in out], ["OK", "OK"], out)
            # Another version under the same URL: another shard's bytes (another
            # size, another mtime: another ETag).
            v2 = self.shards[other]
            with open(path, "wb") as f:
                f.write(v2)
            os.utime(path, (time.time() + 5, time.time() + 5))
            out, r = run_probe(url, cache, [tail, self.ranges_cmd(key, self.block_ranges(key, v2)),
                                            "stats"])
            self.assertEqual([o["code"] for o in out[:2]], ["OK", "OK"], out)
            self.assertEqual(bytes.fromhex(out[0]["hex"]), v2[-self.index_bytes():])
            for (o, n), h in zip(self.block_ranges(key, v2), out[1]["hex"]):
                self.assertEqual(bytes.fromhex(h), v2[o:o + n])
            self.assertEqual(out[2]["objects_changed"], 1, out[2])
            # Changed while a session uses it: the index was read (v2), then
            # the file becomes v3; the blocks of v2's index are not in the
            # cache for v3, and fetching them must fail, not mix versions.
            v3 = self.shards[keys[3]]
            # (Bytes of v2 not in the cache: inside its index, which is cached
            # as a tail, not as a range. Cached blocks of v2 would be served:
            # they are of the version this session's index was read under.)
            script = [tail, "sleep 1500", self.ranges_cmd(key, [(len(v2) - self.index_bytes() + 4, 50)])]
            p = T.subprocess.Popen([probe_bin(), "--url", url, "--cache-dir", cache],
                                   stdin=T.subprocess.PIPE, stdout=T.subprocess.PIPE,
                                   stderr=T.subprocess.PIPE)
            p.stdin.write(("\n".join(script) + "\n").encode())
            p.stdin.flush()
            time.sleep(0.5)
            with open(path, "wb") as f:
                f.write(v3)
            os.utime(path, (time.time() + 10, time.time() + 10))
            so, se = p.communicate(timeout=120)
            res = [json.loads(x) for x in so.decode().splitlines()]
            self.assertEqual(res[0]["code"], "OK", res)
            self.assertEqual(bytes.fromhex(res[0]["hex"]), v2[-self.index_bytes():])
            self.assertEqual(res[2]["code"], "IOError", res)
            self.assertIn("changed on the server", res[2]["message"])
            self.assertIn(url + "/" + key, res[2]["message"])
            # The next session sees v3, whole.
            out, r = run_probe(url, cache, [tail, self.ranges_cmd(key, self.block_ranges(key, v3))])
            self.assertEqual(bytes.fromhex(out[0]["hex"]), v3[-self.index_bytes():])
            for (o, n), h in zip(self.block_ranges(key, v3), out[1]["hex"]):
                self.assertEqual(bytes.fromhex(h), v3[o:o + n])

    # ---- auth and TLS
    def test_basic_auth_from_a_private_file(self):
        with RS.Nginx(self.root.join("srv"), self.root.join("nginx-basic"),
                      basic_auth=("reader", "pa55word")) as ng:
            url = ng.url + "/v.zarr"
            out, r = run_probe(url, self.cache("basic0"), ["get zarr.json"])
            self.assertEqual(out[0]["code"], "IOError", out)
            self.assertEqual(out[0]["errno"], errno.EIO, out)
            self.assertIn("HTTP 401", out[0]["message"])
            self.assertIn(url + "/zarr.json", out[0]["message"])
            auth = self.root.join("basic.auth")
            with open(auth, "w") as f:
                f.write("reader:pa55word\n")
            os.chmod(auth, 0o644)
            out, r = run_probe(url, self.cache("basic1"), ["get zarr.json"], args=["--auth-file", auth])
            self.assertEqual(out[0]["op"], "open", out)
            self.assertIn("chmod 600", out[0]["message"])
            self.assertNotIn("pa55word", r.stdout + r.stderr)
            os.chmod(auth, 0o600)
            out, r = run_probe(url, self.cache("basic2"), ["get zarr.json"], args=["--auth-file", auth])
            self.assertEqual(out[0]["code"], "OK", out)

    def test_bearer_token_from_a_file(self):
        with RS.Nginx(self.root.join("srv"), self.root.join("nginx-bearer"), bearer="t0ken.abc") as ng:
            url = ng.url + "/v.zarr"
            auth = self.root.join("bearer.auth")
            with open(auth, "w") as f:
                f.write("bearer wrong\n")
            os.chmod(auth, 0o600)
            out, r = run_probe(url, self.cache("bearer0"), ["get zarr.json"], args=["--auth-file", auth])
            self.assertEqual((out[0]["code"], out[0]["errno"]), ("IOError", errno.EIO), out)
            self.assertIn("HTTP 401", out[0]["message"])
            with open(auth, "w") as f:
                f.write("bearer t0ken.abc\n")
            out, r = run_probe(url, self.cache("bearer1"), ["get zarr.json"], args=["--auth-file", auth])
            self.assertEqual(out[0]["code"], "OK", out)

    def test_https_with_http2(self):
        with RS.Nginx(self.root.join("srv"), self.root.join("nginx-tls"), tls=True) as ng:
            url = ng.url + "/v.zarr"
            out, r = run_probe(url, self.cache("tls0"), ["get zarr.json"], args=["--op-timeout-ms", "5000"])
            self.assertEqual(out[0]["code"], "IOError", out)
            self.assertIn(url, out[0]["message"])
            self.assertIn("not retried", out[0]["message"], "a bad certificate is not retried")
            mark = ng.mark()
            out, r = run_probe(url, self.cache("tls1"), self.read_all_lines() + ["stats"],
                               args=["--ca-file", ng.cert])
            self.check_all(out[:-1], "https")
            self.assertEqual(out[-1]["http"]["http_version"], 20, out[-1])
            reqs = ng.since(mark)
            self.assertTrue(reqs and all(q["protocol"] == "HTTP/2.0" for q in reqs), reqs[:3])
            self.assertEqual(len({q["conn"] for q in reqs}), 1, "HTTP/2: one connection")


class FaultTest(unittest.TestCase):
    """Reads through the fault proxy in front of nginx."""

    @classmethod
    def setUpClass(cls):
        RemoteStorageTest.setUpClass.__func__(cls)
        cls.proxy = RS.FaultProxy(cls.nginx.port)
        cls.proxy.__enter__()
        cls.purl = cls.proxy.url + "/v.zarr"

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "proxy", None):
            cls.proxy.__exit__(None, None, None)
        RemoteStorageTest.tearDownClass.__func__(cls)

    def setUp(self):
        self.proxy.clear()

    cache = RemoteStorageTest.cache
    block_ranges = RemoteStorageTest.block_ranges
    ranges_cmd = RemoteStorageTest.ranges_cmd
    index_bytes = RemoteStorageTest.index_bytes

    FAST = ["--backoff-initial-ms", "20", "--max-attempts", "6"]

    def read_shard(self, cache, key, args=(), timeout=120):
        lines = ["tail %s %d" % (key, self.index_bytes()),
                 self.ranges_cmd(key, self.block_ranges(key)), "stats"]
        return run_probe(self.purl, cache, lines, args=list(self.FAST) + list(args), timeout=timeout)

    def check_shard(self, out, key):
        data = self.shards[key]
        self.assertEqual(out[0]["code"], "OK", out[0])
        self.assertEqual(bytes.fromhex(out[0]["hex"]), data[-self.index_bytes():])
        self.assertEqual(out[1]["code"], "OK", out[1])
        for (o, n), h in zip(self.block_ranges(key), out[1]["hex"]):
            self.assertEqual(bytes.fromhex(h), data[o:o + n], (key, o, n))

    def offline(self, cache, key):
        out, _ = run_probe(self.purl, cache, ["tail %s %d" % (key, self.index_bytes()),
                                              self.ranges_cmd(key, self.block_ranges(key))],
                           args=["--offline"])
        return out

    def recovers(self, kind, count, retries=None, **params):
        key = sorted(self.shards)[3]
        cache = self.cache("fault-" + kind)
        self.proxy.clear()
        self.proxy.add(kind, match=key, count=count, **params)
        out, r = self.read_shard(cache, key)
        self.assertTrue(r.ok, r.describe())
        self.check_shard(out, key)
        if retries is None:
            self.assertGreaterEqual(out[2]["http"]["retries"], count, (kind, out[2]))
        else:
            self.assertEqual(out[2]["http"]["retries"], retries, (kind, out[2]))
        self.proxy.clear()
        self.check_shard(self.offline(cache, key), key)

    def fails(self, kind, op_timeout_ms=3000, expect=(), expect_any=(), **params):
        """Every request for the shard's blocks faults: the read fails within the
        deadline naming the URL, and nothing of it is cached."""
        key = sorted(self.shards)[4]
        cache = self.cache("fail-" + kind)
        self.proxy.clear()
        out, r = run_probe(self.purl, cache, ["tail %s %d" % (key, self.index_bytes())], args=self.FAST)
        self.assertEqual(out[0]["code"], "OK", out)
        self.proxy.add(kind, match=key, count=-1, **params)
        t0 = time.monotonic()
        out, r = run_probe(self.purl, cache, ["tail %s %d" % (key, self.index_bytes()),
                                              self.ranges_cmd(key, self.block_ranges(key))],
                           args=list(self.FAST) + ["--op-timeout-ms", str(op_timeout_ms),
                                                   "--stall-timeout-ms", "1000"])
        took = time.monotonic() - t0
        self.proxy.clear()
        bad = [o for o in out if o["code"] != "OK"]
        self.assertTrue(bad, out)
        o = bad[0]
        self.assertEqual(o["code"], "IOError", o)
        self.assertIn(self.purl + "/" + key, o["message"])
        for e in expect:
            self.assertIn(e, o["message"])
        if expect_any:
            self.assertTrue(any(e in o["message"] for e in expect_any), o)
        # Bounded: the deadline of each operation, plus process start-up slack
        # (not a performance assertion: a hang would blow through it).
        self.assertLess(o["ms"], op_timeout_ms + 3000, o)
        self.assertLess(took, 2 * op_timeout_ms / 1000.0 + 20)
        # Nothing of the failed read entered the cache.
        off = self.offline(cache, key)
        self.assertEqual(off[1]["code"], "IOError", off)
        self.assertIn("offline", off[1]["message"])
        return o

    def test_503_burst_then_success(self):
        self.recovers("status", 3, status=503)

    def test_429_with_retry_after(self):
        self.recovers("status", 1, status=429, retry_after=1)

    def test_dropped_connections(self):
        self.recovers("drop", 3)

    def test_truncated_bodies(self):
        self.recovers("truncate", 2)

    def test_server_ignoring_range_once(self):
        self.recovers("ignore_range", 1)

    def test_wrong_content_range_once(self):
        self.recovers("bad_range", 1)

    def test_overlong_body_once(self):
        self.recovers("extra", 1)

    def test_slow_server_within_the_deadline(self):
        # Slow answers inside the stall and operation limits are waited for,
        # not retried.
        self.recovers("delay", 2, retries=0, ms=300)

    def test_persistent_503_fails_in_time(self):
        self.fails("status", status=503, expect=["HTTP 503", "attempts"])

    def test_persistent_truncation_fails(self):
        self.fails("truncate")

    def test_stalled_body_times_out(self):
        o = self.fails("stall", ms=30000)
        self.assertEqual(o["errno"], errno.EIO, o)

    def test_no_answer_times_out(self):
        o = self.fails("hang", ms=30000)
        self.assertEqual(o["errno"], errno.EIO, o)
        self.assertIn("deadline", o["message"])

    def test_range_always_ignored_fails(self):
        self.fails("ignore_range", expect=["ignored the Range"])

    def test_content_range_always_wrong_fails(self):
        self.fails("bad_range", expect=["Content-Range"])

    def test_overlong_body_always_fails(self):
        # Caught by the length check, or, when the surplus lands at the start of
        # the next response on the same connection, by curl as a bad reply:
        # either way the read fails and nothing of it is cached.
        self.fails("extra", expect_any=["longer", "protocol"])

    def test_retry_after_past_the_deadline_fails(self):
        self.fails("status", status=503, retry_after=60, expect=["HTTP 503"])

    def test_forbidden_is_not_retried(self):
        key = sorted(self.shards)[5]
        self.proxy.add("status", match=key, count=-1, status=403)
        out, r = run_probe(self.purl, self.cache("forbidden"),
                           ["tail %s %d" % (key, self.index_bytes()), "stats"], args=self.FAST)
        self.assertEqual((out[0]["code"], out[0]["errno"]), ("IOError", errno.EIO), out)
        self.assertIn("HTTP 403", out[0]["message"])
        self.assertIn(self.purl + "/" + key, out[0]["message"])
        self.assertEqual(out[1]["http"]["retries"], 0)
        self.assertIn("HTTP 403", out[1]["last_error"])

    def test_connection_refused_fails_in_time(self):
        port = RS.free_port()
        url = "http://127.0.0.1:%d/v.zarr" % port
        out, r = run_probe(url, self.cache("refused"), ["get zarr.json"],
                           args=self.FAST + ["--op-timeout-ms", "2000"])
        self.assertEqual(out[0]["code"], "IOError", out)
        self.assertIn(url + "/zarr.json", out[0]["message"])
        self.assertLess(out[0]["ms"], 5000)


def main():
    it = iter(list(sys.argv[1:]))
    rest = [sys.argv[0]]
    for a in it:
        if a == "--probe":
            _PROBE["path"] = next(it, None)
        elif a.startswith("--probe="):
            _PROBE["path"] = a.split("=", 1)[1]
        else:
            rest.append(a)
    sys.argv = rest
    T.main()


if __name__ == "__main__":
    main()
