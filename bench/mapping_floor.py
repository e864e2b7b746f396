"""What a changed record costs before any database or system is asked: the engine's floor.

For each of N webCRM organisations and N products (the emulator's own seed rows), edited
as ``bench/engine_micro.py`` edits them, this times the per-record work the engine does
for a record changed in webCRM whatever its state database, with the real functions:

1. ``webcrm_values`` and its fingerprint (is it unchanged? ``engine/unchanged.py``);
2. the merge keys (organisations: a changed record's keys are compared);
3. ``decide`` against the snapshot (which properties to write where, ``engine/differ.py``);
4. ``to_webshop`` for those properties (the body);
5. ``webshop_values`` of the shop's answer and ``snapshot_after`` (the new agreed state);
6. the two fingerprints of the new snapshot and its JSON (what is stored).

No ORM object, no statement, no fake: the sum is the most records per second the
engine's own logic allows on this machine, for comparison with what
``bench/engine_micro.py`` measures for the whole run (issue 10's target is 5,000).

Run::

    .venv/bin/python bench/mapping_floor.py            # 20,000 + 20,000
    .venv/bin/python bench/mapping_floor.py --n 4000
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from shopsync.config.model import Config, Datatype, StateConfig, WebcrmConfig, WebshopConfig
from shopsync.emulators.common.seeddata import company, item
from shopsync.emulators.webcrm.seed import organisation_row, product_row
from shopsync.engine.differ import Side, decide, snapshot_after
from shopsync.engine.mapping import mappings
from shopsync.engine.matching import Matcher
from shopsync.store import repo
from shopsync.store.db import dump_json

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Links:
    """A :class:`MapContext` with no links (organisations and products need none)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def webshop_id(self, datatype: Datatype, webcrm_id: str) -> str | None:
        return None

    def webcrm_id(self, datatype: Datatype, webshop_id: str) -> str | None:
        return None

    def product_id_for_sku(self, sku: str) -> str | None:
        return None

    def unlinked(self, datatype: Datatype, side: str, ref_id: str) -> str | None:
        return None


def records(n: int, seed: int) -> dict[Datatype, list[dict[str, Any]]]:
    return {
        Datatype.customers: [organisation_row(company(seed, i), seed) for i in range(n)],
        Datatype.products: [
            product_row(item(seed, j), "ProductCustom1", "ProductCustom2") for j in range(n)
        ],
    }


def edited(dt: Datatype, rec: dict[str, Any], k: int) -> dict[str, Any]:
    """The edit ``bench/engine_micro.py`` makes in webCRM."""
    if dt is Datatype.customers:
        return {**rec, "OrganisationTelephone": f"+45 1{k:07d}"}
    return {**rec, "ProductPrice": float(rec.get("ProductPrice") or 0) + 1.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="records per datatype")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    config = Config(
        webcrm=WebcrmConfig(base_url="http://webcrm.invalid", auth_code="x"),  # type: ignore[arg-type]
        webshop=WebshopConfig(base_url="http://webshop.invalid", token="x"),  # type: ignore[arg-type]
        state=StateConfig(url="sqlite:///:memory:"),
    )
    maps, matcher, ctx = mappings(config), Matcher(config), Links(config)
    data = records(args.n, args.seed)
    steps: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        steps[name] = steps.get(name, 0.0) + now - since
        return now

    # Warm up (first calls load tables: countries, VAT codes), then measure from zero.
    for dt, recs in data.items():
        for rec in recs[:50]:
            maps[dt].webcrm_values(rec)
            matcher.keys(dt, "webcrm", rec)
    total = 0
    for dt, recs in data.items():
        mapping = maps[dt]
        # The agreed state before the edit: the record as created in the shop.
        agreed = []
        for rec in recs:
            body = mapping.to_webshop(rec, ctx)
            agreed.append(snapshot_after(mapping, None, rec, {**body, "id": "1"}))
        for k, (rec, snap) in enumerate(zip(recs, agreed, strict=True)):
            raw = edited(dt, rec, k)
            t = time.perf_counter()
            repo.values_fingerprint(mapping.webcrm_values(raw))
            t = lap("1 values + fingerprint", t)
            matcher.keys(dt, "webcrm", raw)
            t = lap("2 merge keys", t)
            d = decide(mapping, snap, Side(raw, NOW), None, ctx)
            t = lap("3 decide", t)
            body = mapping.to_webshop(raw, ctx, d.to_webshop)
            t = lap("4 to_webshop", t)
            props = snapshot_after(mapping, snap, raw, {**body, "id": "1"}, c_values=d.c_values)
            t = lap("5 answer + snapshot", t)
            repo.values_fingerprint(repo.side_values(props, "c"))
            repo.values_fingerprint(repo.side_values(props, "s"))
            dump_json(props)
            lap("6 fingerprints + JSON", t)
            assert d.to_webshop, f"{dt.value}: the edit was not seen"
            total += 1
    seconds = sum(steps.values())
    print(f"per-record work of a record changed in webCRM, {total:,} records "
          f"({args.n:,} organisations + {args.n:,} products), no database:")  # fmt: skip
    for name, s in sorted(steps.items()):
        print(f"  {name:<24} {s:6.2f} s  {s / total * 1e6:6.1f} µs/record")
    print(f"  {'total':<24} {seconds:6.2f} s  {seconds / total * 1e6:6.1f} µs/record"
          f"  = at most {total / seconds:,.0f} records/s")  # fmt: skip


if __name__ == "__main__":
    main()
