"""SIGKILL of ``shopsync serve`` at any moment loses and duplicates nothing (issue 11,
the kill tests of issue 8 extended to the service).

Both systems are seeded as for the engine's kill test; a service is killed at random
instants of its start-up run, then in the middle of hook-driven work (records made on
both sides while it runs), and started again each time. A last service runs until the
interrupted creates can be resolved and nothing is queued; then every record is linked
exactly once on each side, nothing waits or is put aside, and a further ``sync``
writes nothing.
"""

from __future__ import annotations

import random
import time

import pytest

from shopsync.runtime import Installation
from tests.engine.conftest import Env, customer, make_config, org
from tests.engine.test_crash import assert_consistent, seed
from tests.service.conftest import Service, World

TIMEOUT = 10.0
"""``[webcrm] timeout_seconds`` of the service's configuration (tests/service/conftest)."""


def _kill(service: Service) -> None:
    service.process.kill()
    service.process.wait(10)
    service.client.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_of_serve_at_any_moment_loses_and_duplicates_nothing(world: World) -> None:
    inst = Installation(make_config(world.crm_server, world.shop_server, world.state_url))
    env = Env(world.crm_server, world.shop_server, world.state_url, inst)
    try:
        seed(env)
        rng = random.Random(20261130)
        for _ in range(3):  # in the start-up run: staging, creates, PATCH batches, lines
            service = world.serve(poll_seconds=1)
            time.sleep(rng.uniform(0.3, 5.0))
            _kill(service)
        service = world.serve_started(poll_seconds=1)
        for round_ in range(3):  # in hook-driven work
            for i in range(4):
                # Every merge key its own (VAT number, e-mail and web host): the kills
                # must be what is tested, not an ambiguity between the new records.
                world.shop.create(
                    "customers",
                    customer(f"Kill {round_}-{i} GmbH", vat_number=f"DE7{round_}{i:04d}",
                             email=f"info@kill{round_}{i}.de",
                             website=f"https://kill{round_}{i}.de"),
                    idempotency_key=f"kill-{round_}-{i}",
                )  # fmt: skip
                world.crm_create("Organisation", org(f"Kill {round_}-{i} ApS",
                                                     OrganisationVatNumber=f"DK6{round_}{i:04d}",
                                                     OrganisationWww=f"kill{round_}{i}.dk"))  # fmt: skip
            time.sleep(rng.uniform(0.05, 1.0))
            _kill(service)
            service = world.serve(poll_seconds=1)
        # Interrupted webCRM creates are asked after about timeout_seconds + 1 s.
        time.sleep(TIMEOUT + 1.5)
        runs = service.runs("ok")
        service.wait_idle(after_runs=runs + 2)  # two more polls after the settle
        assert service.terminate() < 10
        final = env.sync()
        assert final.writes == 0, [p for p in final.plan if p.action != "wait"][:10]
        assert_consistent(env)
        names = [c["name"] for c in env.shop_all("customers")]
        for round_ in range(3):
            for i in range(4):
                assert names.count(f"Kill {round_}-{i} GmbH") == 1
                assert names.count(f"Kill {round_}-{i} ApS") == 1
    finally:
        env.inst.close()
