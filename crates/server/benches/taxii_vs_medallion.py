"""TAXII page latency and ingest: mamori against OASIS medallion (memory backend), same
objects, same client, same run (issue 8 acceptance; docs/benchmarks/taxii.md).

Usage:
  python3 crates/server/benches/taxii_vs_medallion.py SERVER_BIN SIZES MEDALLION_SIZES \
      REPEATS MEDALLION_REPEATS

SERVER_BIN is target/release/examples/taxii_bench_server (the centre's router on SQLite);
SIZES a comma list of collection sizes (ascending) for mamori, MEDALLION_SIZES those for
medallion (comma list, may be empty); REPEATS and MEDALLION_REPEATS the number of timed GETs
per figure (the median is printed).

Both servers hold the same TLP:GREEN indicators and are asked, over HTTP on 127.0.0.1 by
the same `requests` session, for (a) the first page of 100 objects and (b) a page of 100
from late in the collection (`added_after`). mamori is filled by POSTing envelopes of at
most 10^5 indicators (each POST timed: the ingest figure); medallion cannot be filled by
POST at these sizes (its add is quadratic), so its memory backend loads a data file with
the same objects.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import requests

TAXII = "application/taxii+json;version=2.1"
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
BATCH = 100_000
MEDALLION_TIMEOUT = 600


def indicator(n):
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--%08x-0000-4000-8000-%012x" % (n >> 16, n),
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "name": "C2 server %d" % n,
        "indicator_types": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '%d.%d.%d.%d']"
        % (10 + (n >> 24) % 200, (n >> 16) & 255, (n >> 8) & 255, n & 255),
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "object_marking_refs": [GREEN],
    }


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_get(session, pid, url, params, timeout=120):
    c = cpu_seconds(pid)
    t = time.perf_counter()
    r = session.get(url, params=params, timeout=timeout)
    dt = time.perf_counter() - t
    cpu = cpu_seconds(pid) - c
    r.raise_for_status()
    n = len(r.json().get("objects", []))
    return dt, cpu, n


def median_ms(session, pid, url, params, repeats, timeout=120):
    """Median wall time and median server CPU time of `repeats` GETs, in ms. CPU time is
    read from /proc at 10 ms resolution: meaningful for the slow server, a bound for the
    fast one."""
    times, cpus = [], []
    n = None
    for _ in range(repeats):
        dt, cpu, n = timed_get(session, pid, url, params, timeout)
        times.append(dt)
        cpus.append(cpu)
    return statistics.median(times) * 1000, statistics.median(cpus) * 1000, n


def start_mamori(binary, data_dir):
    # MAMORI_BENCH_POSTGRES_URL: an empty PostgreSQL database to use instead of SQLite.
    pg = os.environ.get("MAMORI_BENCH_POSTGRES_URL")
    p = subprocess.Popen([binary, data_dir] + ([pg] if pg else []), stdout=subprocess.PIPE,
                         text=True)
    addr, token = p.stdout.readline().split()
    return p, "http://" + addr, token


def mamori_run(binary, sizes, repeats):
    results = {}
    ingest = []
    with tempfile.TemporaryDirectory() as d:
        p, base, token = start_mamori(binary, d)
        try:
            s = requests.Session()
            s.headers.update({"Authorization": "Bearer " + token, "Accept": TAXII})
            url = base + "/taxii2/api/collections/indicators/objects/"
            stored = 0
            for target in sizes:
                late = None
                while stored < target:
                    n = min(BATCH, target - stored)
                    body = json.dumps(
                        {"objects": [indicator(i) for i in range(stored, stored + n)]}
                    ).encode()
                    late = datetime.now(timezone.utc) - timedelta(milliseconds=1)
                    t = time.perf_counter()
                    r = s.post(url, data=body, headers={"Content-Type": TAXII}, timeout=900)
                    dt = time.perf_counter() - t
                    r.raise_for_status()
                    assert r.json()["success_count"] == n, r.text[:200]
                    ingest.append((n, stored, dt, len(body)))
                    stored += n
                first, first_cpu, n1 = median_ms(s, p.pid, url, {"limit": 100}, repeats)
                after = late.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                deep, _, n2 = median_ms(s, p.pid, url, {"limit": 100, "added_after": after},
                                        repeats)
                assert n1 == 100 and n2 == 100, (n1, n2)
                results[target] = (first, deep, first_cpu)
                print("mamori   %9d objects: first page %8.2f ms (server CPU %.0f ms), "
                      "late page %8.2f ms" % (target, first, first_cpu, deep), flush=True)
            rss = int(open("/proc/%d/status" % p.pid).read().split("VmRSS:")[1].split()[0])
            db_path = os.path.join(d, "mamori.db")
            db = os.path.getsize(db_path) if os.path.exists(db_path) else 0
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait()
    return results, ingest, rss, db


def medallion_data(n, port):
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    objs = [indicator(i) for i in range(n)]
    manifest = [
        {
            "id": o["id"],
            "date_added": (base + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "version": o["modified"],
            "media_type": "application/stix+json;version=2.1",
        }
        for i, o in enumerate(objs)
    ]
    return {
        "/discovery": {
            "title": "medallion",
            "default": "http://127.0.0.1:%d/api1/" % port,
            "api_roots": ["http://127.0.0.1:%d/api1/" % port],
        },
        "api1": {
            "information": {
                "title": "api1",
                "versions": [TAXII],
                "max_content_length": 9765625,
            },
            "status": [],
            "collections": [
                {
                    "id": "91a7b528-80eb-42ed-a74d-c6fbd5a26116",
                    "title": "indicators",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objs,
                    "manifest": manifest,
                }
            ],
        },
    }, manifest


def free_port():
    import socket

    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def medallion_run(n, repeats):
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        data, manifest = medallion_data(n, port)
        path = os.path.join(d, "data.json")
        with open(path, "w") as f:
            json.dump(data, f)
        del data
        cfg = os.path.join(d, "config.json")
        with open(cfg, "w") as f:
            json.dump({
                "backend": {"module": "medallion.backends.memory_backend",
                            "module_class": "MemoryBackend", "filename": path},
                "users": {"user": "pass"},
                "taxii": {"max_page_size": 100},
            }, f)
        p = subprocess.Popen(
            [sys.executable, "-m", "medallion.scripts.run", "--port", str(port), cfg],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            s = requests.Session()
            s.auth = ("user", "pass")
            s.headers.update({"Accept": TAXII})
            deadline = time.time() + 300
            while True:
                try:
                    if s.get("http://127.0.0.1:%d/taxii2/" % port, timeout=5).ok:
                        break
                except requests.RequestException:
                    pass
                assert time.time() < deadline, "medallion did not start"
                time.sleep(0.5)
            url = "http://127.0.0.1:%d/api1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/" % port
            late = manifest[n - n // 10 - 1]["date_added"]
            first, first_cpu, n1 = median_ms(s, p.pid, url, {"limit": 100}, repeats,
                                             MEDALLION_TIMEOUT)
            deep, _, n2 = median_ms(s, p.pid, url, {"limit": 100, "added_after": late},
                                    repeats, MEDALLION_TIMEOUT)
            assert n1 == 100 and n2 == 100, (n1, n2)
            rss = int(open("/proc/%d/status" % p.pid).read().split("VmRSS:")[1].split()[0])
        finally:
            p.terminate()
            p.wait()
    print("medallion %8d objects: first page %8.2f ms (server CPU %.0f ms), late page %8.2f ms"
          % (n, first, first_cpu, deep), flush=True)
    return first, deep, first_cpu, rss


def main():
    binary, sizes, med_sizes, repeats, med_repeats = sys.argv[1:6]
    sizes = [int(x) for x in sizes.split(",")]
    med_sizes = [int(x) for x in med_sizes.split(",") if x]
    repeats, med_repeats = int(repeats), int(med_repeats)
    med = {}
    for n in med_sizes:
        med[n] = medallion_run(n, med_repeats)
    ours, ingest, rss, db = mamori_run(binary, sizes, repeats)
    print()
    print("| stored objects | mamori first page | mamori late page | mamori server CPU "
          "| medallion first page | medallion late page | medallion server CPU "
          "| ratio, wall (first page) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        f, d, c = ours[n]
        if n in med:
            mf, md, mc, _ = med[n]
            print("| %d | %.2f ms | %.2f ms | %.0f ms | %.0f ms | %.0f ms | %.0f ms | **%.0fx** |"
                  % (n, f, d, c, mf, md, mc, mf / f))
        else:
            print("| %d | %.2f ms | %.2f ms | %.0f ms | not run | not run | - | - |" % (n, f, d, c))
    print()
    for n, stored, dt, size in ingest:
        print("ingest: one %d-indicator envelope (%.1f MB) on top of %d stored: %.2f s, %.0f objects/s"
              % (n, size / 1e6, stored, dt, n / dt))
    print("mamori RSS after the run: %.0f MB; SQLite file %.0f MB" % (rss / 1024, db / 1e6))
    for n, (_, _, _, r) in med.items():
        print("medallion RSS at %d objects: %.0f MB" % (n, r / 1024))


if __name__ == "__main__":
    main()
