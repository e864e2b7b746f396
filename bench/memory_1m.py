"""Benchmark: the memory of an incremental run over a million linked records.

Issue 10: "an incremental run over 1,000,000 linked records (seed them through the
controls; say how long that took) peaks below 300 MB RSS; report the state database's
size on disk."

1. Starts the webCRM emulator and the reference webshop as real processes (as
   ``bench/initial_sync.py`` does) and seeds both through their ``/seed`` controls with
   the mix of ``bench/initial_sync.py``, scaled so that about ``--records`` links come
   out: per 10,000 webCRM organisations 2,000 products, 5,000 opportunities and about
   52,500 quotation lines; the shop a fifth of that (a third of its customers the same
   companies, half its products the same SKUs) with its orders and lines. Three
   quarters of the links are order lines.
2. Establishes the links with ``shopsync sync`` (the product's CLI, a child process, a
   configuration file like an installation's), then runs ``shopsync sync`` once more: the
   echo pass that reads the initial sync's own writes back.
3. Edits ``--edits`` organisations in webCRM and as many customers in the shop, then runs
   the **incremental sync** as a child process of its own, and once more with ``--sweep``
   (the hourly read of every webCRM product and quotation line that finds deletes; the
   configuration puts the scheduled sweep out of reach so that only this run does it).

For each ``shopsync sync`` child it prints the wall time, the peak RSS of that process
(its own ``VmHWM``, sampled from ``/proc`` while it runs: see :func:`run_child`), the
requests on each side, rows read and written, and the state database's size on disk
after it (SQLite: the file plus ``-wal`` and ``-shm``; PostgreSQL with ``--state-url``:
``pg_database_size``).

``--trace`` then runs the incremental child and the ``--sweep`` one again under
tracemalloc and prints, for each, where the Python objects alive at its largest sampled
moment were allocated (file:line), the largest first. Slower, and its RSS includes
tracemalloc's own bookkeeping: not the figure to quote. ``--trace-echo`` runs the echo
pass itself under tracemalloc (its figures are then not the ones to quote either).
``--dir`` keeps the servers' databases and the state; ``--reuse`` then starts the
servers on them again and runs only step 3 (the edits with seeds of their own).

Run::

    .venv/bin/python bench/memory_1m.py --records 10000       # a trial run
    .venv/bin/python bench/memory_1m.py                       # 1,000,000 links
    .venv/bin/python bench/memory_1m.py --records 100000 --trace
    .venv/bin/python bench/memory_1m.py --records 100000 --dir /tmp/m100k   # keep the files
    .venv/bin/python bench/memory_1m.py --dir /tmp/m100k --reuse --trace    # measure again
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

AUTH = "bench-0000-0000-0000-000000000000"
TOKEN = "bench-webshop-token"
LINKS_AT_SCALE_1 = 82_258
"""Links after ``bench/initial_sync.py`` at scale 1.0 (its published run), the unit here."""
SHOPSYNC = [sys.executable, "-m", "shopsync"]


# ----------------------------------------------------------------------- children
@dataclass
class Child:
    name: str
    wall_s: float
    peak_rss_mb: float
    report: dict[str, Any]
    db_bytes: int

    def total(self, key: str) -> int:
        return sum(int(s[key]) for s in self.report.get("stats", {}).values())


def run_child(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float, str, int]:
    """Run ``cmd``; its wall time, peak RSS (MB), stdout and exit status.

    The peak is the child's own ``VmHWM`` (``/proc/<pid>/status``), sampled every
    50 ms until it exits: the high-water mark of its own address space. ``wait4``'s
    ``ru_maxrss`` is not used, because Linux carries the high-water mark of the image
    a process replaced with ``exec`` into it: a child spawned by this benchmark (which
    holds a few hundred MB after seeding) would report at least this process's size.
    Growth in the last 50 ms of a run is missed (a run ends by committing).
    """
    out_path = log.with_suffix(".out")
    with out_path.open("wb") as out, log.open("ab") as err:
        t = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            status = Path(f"/proc/{proc.pid}/status")
            while not done.is_set():
                try:
                    for line in status.read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
                except (OSError, ValueError):
                    return
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, _usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
        wall = time.monotonic() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, peak[0] / 1024, out_path.read_text(), proc.returncode


def db_size(state_url: str, sqlite_path: Path | None) -> int:
    if sqlite_path is not None:
        files = [sqlite_path.with_name(sqlite_path.name + s) for s in ("", "-wal", "-shm")]
        return sum(p.stat().st_size for p in files if p.exists())
    from sqlalchemy import create_engine, text

    engine = create_engine(state_url)
    try:
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_database_size(current_database())"))
            return int(size.scalar_one())
    finally:
        engine.dispose()


def sqlite_breakdown(path: Path) -> str:
    """What the state file holds: free pages (left by the inbox of the big runs; SQLite
    keeps them for reuse) and the largest tables and indexes (``dbstat``, when compiled in)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        text = (
            f"{pages * page / 1e6:.1f} MB in the file, {free * page / 1e6:.1f} MB of it free pages"
        )
        try:
            rows = conn.execute(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8"
            ).fetchall()
        except sqlite3.Error:
            return text
        return text + "; " + ", ".join(f"{name} {size / 1e6:.1f}" for name, size in rows)
    finally:
        conn.close()


# ----------------------------------------------------------------------- tracing
def traced_child(out: Path, argv: list[str]) -> None:
    """``shopsync`` in this process under tracemalloc; a thread samples the traced size
    and keeps the statistics of the largest moment, written to ``out`` at the end."""
    import tracemalloc

    tracemalloc.start(12)
    best: dict[str, Any] = {"size": 0, "stats": []}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            size, _ = tracemalloc.get_traced_memory()
            if size > best["size"] * 1.05:
                snap = tracemalloc.take_snapshot().filter_traces(
                    (tracemalloc.Filter(False, tracemalloc.__file__),)
                )
                best["size"] = size
                best["stats"] = [
                    (str(st.traceback[0]), st.size, st.count)
                    for st in snap.statistics("lineno")[:40]
                ]
                best["tree"] = [
                    ([str(f) for f in st.traceback], st.size, st.count)
                    for st in snap.statistics("traceback")[:15]
                ]

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    from shopsync.cli import main as cli_main

    sys.argv = ["shopsync", *argv]
    code = 0
    try:
        cli_main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        done.set()
        thread.join()
        _, peak = tracemalloc.get_traced_memory()
        best["peak"] = peak
        out.write_text(json.dumps(best))
    raise SystemExit(code)


def print_trace(path: Path) -> None:
    data = json.loads(path.read_text())
    mib = 1024 * 1024
    print(f"\ntracemalloc: peak {data['peak'] / mib:.0f} MiB traced; at the largest sample "
          f"({data['size'] / mib:.0f} MiB), by line:")  # fmt: skip
    for where, size, count in data["stats"][:25]:
        print(f"  {size / mib:8.1f} MiB {count:>10,} blocks  {where}")
    print("largest allocation stacks (the allocating line last):")
    for frames, size, count in data.get("tree", [])[:8]:
        print(f"  {size / mib:8.1f} MiB {count:>10,} blocks")
        for f in frames:
            print(f"      {f}")


# ----------------------------------------------------------------------- the run
def source() -> str:
    """Which shopsync runs (children inherit ``PYTHONPATH``): its directory and, in a git
    checkout, the commit and whether its files differ from it (others at work)."""
    import shopsync

    where = Path(shopsync.__file__).resolve().parent
    git = ["git", "-C", str(where)]
    try:
        rev = subprocess.run([*git, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return f"{where} (not a git checkout)"
    return f"{where} (git {rev}{', with uncommitted changes' if dirty else ''})"


def write_config(path: Path, crm_url: str, shop_url: str, state_url: str, rate: int) -> None:
    path.write_text(
        f'[webcrm]\nbase_url = "{crm_url}"\nrate_limit = {rate}\n\n'
        f'[webshop]\nbase_url = "{shop_url}"\n\n'
        f'[state]\nurl = "{state_url}"\n\n'
        "[deletes]\nsweep_interval_minutes = 10080  # only --sweep runs one here\n"
    )


def links_of(cmd_env: dict[str, str], config: Path) -> dict[str, int]:
    out = subprocess.run(
        [*SHOPSYNC, "status", "--config", str(config), "--json"],
        capture_output=True, text=True, env=cmd_env, check=True,
    ).stdout  # fmt: skip
    return {row["datatype"]: int(row["linked"]) for row in json.loads(out)["links"]}


def edit_both(config: Path, env: dict[str, str], edits: int, seed: int) -> None:
    """``edits`` organisations' phones in webCRM (one PATCH), as many customers' phones in
    the shop (one request each), chosen among the linked ones."""
    from shopsync.config.loader import load_config
    from shopsync.runtime import Installation
    from shopsync.store import repo

    cfg = load_config(config, env)
    with Installation(cfg) as inst:
        with inst.session() as s:
            links = list(repo.active_links(s, "customers"))
        picks = random.Random(seed).sample(links, min(len(links), 2 * edits))
        tag = f"{int(time.time()) % 100:02d}"  # new values each time, also on a --reuse
        inst.webcrm.upsert(
            "Organisation",
            [{"OrganisationId": int(ln.webcrm_id), "OrganisationTelephone": f"+45 {tag}{i:06d}"}
             for i, ln in enumerate(picks[:edits])],
        )  # fmt: skip
        for i, ln in enumerate(picks[edits:]):
            inst.webshop.update("customers", ln.webshop_id, {"phone": f"+46 {tag}{i:06d}"})


def seed_both(crm_url: str, shop_url: str, records: int, seed: int) -> str:
    """Both systems through their ``/seed`` controls, scaled to about ``records`` links;
    prints the counts and returns the summary line."""
    scale = records / LINKS_AT_SCALE_1
    orgs, products, opps = (round(x * scale) for x in (10_000, 2_000, 5_000))
    shop_customers = round(2_000 * scale)
    print(f"seeding for about {records:,} links (scale {scale:.2f} of "
          "bench/initial_sync.py) ...", flush=True)  # fmt: skip
    t = time.monotonic()
    seeded = httpx.post(
        crm_url + "/_emulator/seed",
        json={"n": orgs, "products": products, "opportunities": opps, "seed": seed},
        timeout=7200,
    ).json()
    crm_s = time.monotonic() - t
    shop_seeded = httpx.post(
        shop_url + "/_webshop/seed", json={"n": shop_customers, "seed": seed}, timeout=7200
    ).json()
    seed_s = time.monotonic() - t
    crm_rows = sum(v for k, v in seeded.items() if isinstance(v, int) and k != "seed")
    shop_rows = sum(shop_seeded.get(k, 0) for k in ("customers", "products", "orders"))
    print(f"seeded in {seed_s:.0f} s (webCRM {crm_s:.0f} s: {seeded}; webshop "
          f"{seed_s - crm_s:.0f} s: {shop_seeded})", flush=True)  # fmt: skip
    return (f"seeding: {seed_s:.0f} s for {crm_rows:,} webCRM rows and {shop_rows:,} shop "
            "records (orders with their lines) through the /seed controls")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--records", type=int, default=1_000_000, help="links wanted (about)")
    ap.add_argument("--rate-limit", type=int, default=250, help="webCRM requests per 60 s")
    ap.add_argument("--edits", type=int, default=100, help="edits on each side before the run")
    ap.add_argument("--state-url", help="a PostgreSQL URL for the state (default SQLite)")
    ap.add_argument("--dir", type=Path, help="keep the servers' and the state's files here")
    ap.add_argument("--reuse", action="store_true",
                    help="with the --dir of an earlier run: no seeding, initial sync or echo "
                         "pass, the incremental runs only")  # fmt: skip
    ap.add_argument("--trace", action="store_true", help="tracemalloc the incremental child")
    ap.add_argument("--trace-echo", action="store_true", help="tracemalloc the echo pass")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--trace-child", type=Path, help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.trace_child is not None:
        traced_child(args.trace_child, [a for a in rest if a != "--"])
        return

    from shopsync import logs
    from shopsync.emulators.launch import start_webcrm_emulator, start_webshop_server

    logs.configure("warning")
    print(f"shopsync: {source()}", flush=True)

    keep = args.dir is not None
    if args.reuse and not (keep and (args.dir / "crm.sqlite").exists()):
        ap.error("--reuse needs --dir with the files of an earlier run")
    with tempfile.TemporaryDirectory(prefix="shopsync-mem-") as tmp:
        d: Path = args.dir if keep else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        sqlite_path = None if args.state_url else d / "state.sqlite"
        state_url = args.state_url or f"sqlite:///{sqlite_path}"
        crm = start_webcrm_emulator(
            d / "crm.sqlite", auth_code=AUTH, rate_limit=args.rate_limit, log_path=d / "crm.log"
        )
        shop = start_webshop_server(str(d / "shop.sqlite"), token=TOKEN, log_path=d / "shop.log")
        env = {**os.environ, "SHOPSYNC_WEBCRM_AUTH_CODE": AUTH, "SHOPSYNC_WEBSHOP_TOKEN": TOKEN}
        config = d / "shopsync.toml"
        write_config(config, crm.url, shop.url, state_url, args.rate_limit)
        children: list[Child] = []
        try:
            if args.reuse:
                print(f"reusing the systems and the state in {d}", flush=True)
                # the state may come from an older shopsync (status does not migrate)
                subprocess.run([*SHOPSYNC, "db", "upgrade", "--config", str(config)],
                               env=env, check=True, capture_output=True)  # fmt: skip
                seeding = f"seeding: none (--reuse of {d})"
            else:
                seeding = seed_both(crm.url, shop.url, args.records, args.seed)

            def sync(name: str, *extra: str, trace: bool = False) -> Child:
                httpx.delete(crm.url + "/_emulator/counters", timeout=30)
                cli = ["sync", "--config", str(config), "--json", *extra]
                trace_out = d / f"trace-{len(children)}.json"
                cmd = (
                    [sys.executable, __file__, "--trace-child", str(trace_out), "--", *cli]
                    if trace
                    else [*SHOPSYNC, *cli]
                )
                print(f"{name} ...", flush=True)
                wall, rss, out, code = run_child(cmd, env, d / f"sync-{len(children)}.log")
                if code not in (0, 5):
                    sys.exit(f"{name}: shopsync sync exited {code}; see {d}/sync-*.log")
                child = Child(name, wall, rss, json.loads(out), db_size(state_url, sqlite_path))
                emulator = httpx.get(crm.url + "/_emulator/counters", timeout=30).json()
                child.report["emulator_requests"] = emulator["total"]
                children.append(child)
                print(f"  {wall:.1f} s, peak RSS {rss:.0f} MB, state {child.db_bytes / 1e6:.0f} MB, "
                      f"{child.report['webcrm_requests']} webCRM / "
                      f"{child.report['webshop_requests']} webshop requests", flush=True)  # fmt: skip
                if trace:
                    print_trace(trace_out)
                return child

            if not args.reuse:
                sync("initial sync (links made)")
            links = links_of(env, config)
            print(f"links: {links} = {sum(links.values()):,}", flush=True)
            if not args.reuse:
                sync("echo pass" + (", under tracemalloc" if args.trace_echo else ""),
                     trace=args.trace_echo)  # fmt: skip
            edit_both(config, env, args.edits, args.seed + 2 * args.reuse)
            sync(f"incremental ({args.edits}+{args.edits} edits)")
            sync("incremental, nothing changed")
            sync("incremental with --sweep", "--sweep")
            if args.trace:  # both once more, traced (their RSS is not the figure)
                edit_both(config, env, args.edits, args.seed + 1)
                sync("incremental, under tracemalloc", trace=True)
                sync("--sweep, under tracemalloc", "--sweep", trace=True)
        finally:
            crm.stop()
            shop.stop()

        print()
        print(seeding)
        listed = ", ".join(f"{k} {v:,}" for k, v in links.items())
        print(f"links: {sum(links.values()):,} ({listed})")
        state = "SQLite file + WAL" if sqlite_path else "PostgreSQL database"
        head = (f"{'run':<34} {'wall s':>8} {'peak RSS MB':>11} {'webCRM req':>10} "
                f"{'(emulator)':>10} {'shop req':>8} {'rows read':>10} {'written':>8} "
                f"{'state MB':>9}")  # fmt: skip
        print(f"\nper `shopsync sync` child process (state: {state})")
        print(head)
        print("-" * len(head))
        for c in children:
            r = c.report
            print(f"{c.name:<34} {c.wall_s:>8.1f} {c.peak_rss_mb:>11.0f} "
                  f"{r['webcrm_requests']:>10,} {r['emulator_requests']:>10,} "
                  f"{r['webshop_requests']:>8,} "
                  f"{c.total('received_webcrm') + c.total('read_webshop'):>10,} "
                  f"{r['writes']:>8,} {c.db_bytes / 1e6:>9.1f}")  # fmt: skip
        if sqlite_path is not None:
            print(f"\nstate database at the end: {sqlite_breakdown(sqlite_path)} (MB)")
        if keep:
            print(f"\nfiles kept in {d}")


if __name__ == "__main__":
    main()
