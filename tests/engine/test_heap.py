"""The garbage collector while a run works (:mod:`shopsync.engine.heap`): tuned for the
run, restored after it, shared by runs in threads of one process."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from shopsync.engine import heap
from shopsync.engine.heap import YOUNG_THRESHOLD, quiet_collector
from tests.engine.conftest import Env, org


@pytest.fixture(autouse=True)
def default_collector() -> Iterator[None]:
    """Each test starts from the interpreter's defaults and leaves them so."""
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    yield
    gc.set_threshold(*saved)
    gc.unfreeze()


def test_a_run_freezes_what_was_there_and_raises_the_young_threshold() -> None:
    before: list[int] = []
    assert any(o is before for o in gc.get_objects())
    with quiet_collector():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        during: list[int] = []
        walked = gc.get_objects()  # what collections walk: not the permanent generation
        assert not any(o is before for o in walked)
        assert any(o is during for o in walked)
        del walked
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_cycles_made_during_a_run_are_still_collected() -> None:
    class Node:
        other: Any = None

    collected = threading.Event()
    with quiet_collector():
        a, b = Node(), Node()
        a.other, b.other = b, a
        weakref.finalize(a, collected.set)
        del a, b
        gc.collect()
        assert collected.is_set()


def test_a_failing_run_restores_the_collector() -> None:
    with pytest.raises(RuntimeError), quiet_collector():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
    assert heap._runs == 0


def test_overlapping_runs_restore_only_when_the_last_one_ends() -> None:
    first, second = quiet_collector(), quiet_collector()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert gc.get_freeze_count() > 0
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_a_higher_threshold_set_by_the_process_is_kept() -> None:
    gc.set_threshold(50_000, 20, 30)
    with quiet_collector():
        assert gc.get_threshold() == (50_000, 20, 30)
    assert gc.get_threshold() == (50_000, 20, 30)


def test_a_collector_switched_off_by_threshold_stays_off() -> None:
    gc.set_threshold(0, 10, 10)
    with quiet_collector():
        assert gc.get_threshold() == (0, 10, 10)
    assert gc.get_threshold() == (0, 10, 10)


def test_a_sync_runs_with_the_collector_tuned_and_restores_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the engine saw while it staged, and what is left after the run."""
    from shopsync.engine.staging import Stager

    seen: list[tuple[int, int, int]] = []
    stage = Stager.stage

    def watching(self: Stager, dt: Any) -> None:
        seen.append(gc.get_threshold())
        stage(self, dt)

    monkeypatch.setattr(Stager, "stage", watching)
    env.crm_create("Organisation", org("Affald ApS"))
    env.sync()
    assert seen and all(t[0] == YOUNG_THRESHOLD for t in seen), seen
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
