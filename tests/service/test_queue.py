"""The service's queue: work per (datatype, record), debounced, coalesced, in order."""

from __future__ import annotations

from shopsync.config.model import Datatype
from shopsync.service.queue import DEBOUNCE, MAX_READS, Job, Key, Work, WorkQueue

C, P, ORD, L = Datatype.customers, Datatype.products, Datatype.orders, Datatype.order_lines


def _hook(at: float, *, deleted: bool = False, source: str = "webcrm") -> Work:
    return Work("hook", at + DEBOUNCE, deleted=deleted, hinted={source: at})


def test_hints_for_one_record_are_debounced_into_one_read_from_the_first_hint() -> None:
    q = WorkQueue()
    q.add([Key(C, "webcrm", "42")], _hook(0.0))
    q.add([Key(C, "webcrm", "42")], _hook(0.2, source="webshop"))
    assert q.take_due(0.2, True) is None  # the first hint's debounce is not over
    job = q.take_due(DEBOUNCE, True)
    assert job is not None
    assert job.only == [] and job.records == {C: {"webcrm": ["42"]}}
    assert job.work[Key(C, "webcrm", "42")].hinted == {"webcrm": 0.0, "webshop": 0.2}
    assert q.take_due(10.0, True) is None  # taken off the queue


def test_a_whole_datatype_swallows_its_records_and_many_records_become_one_read() -> None:
    work = {Key(C): _hook(0), Key(C, "webcrm", "1"): _hook(0)}
    assert Job.of(work).only == [C] and Job.of(work).records == {}
    # ... but not a deleted one: a read since the cursor does not see every delete.
    poll_and_delete = {Key(P): Work("poll", 0.0), Key(P, "webcrm", "9"): _hook(0, deleted=True)}
    job = Job.of(poll_and_delete)
    assert job.only == [P] and job.records == {P: {"webcrm": ["9"]}} and not job.sweep
    many = {Key(P, "webcrm", str(i)): _hook(0) for i in range(MAX_READS + 1)}
    job = Job.of(many)
    assert job.only == [P] and job.records == {} and not job.sweep
    few = {Key(P, "webshop", str(i)): _hook(0) for i in range(MAX_READS)}
    assert Job.of(few).records == {P: {"webshop": [str(i) for i in sorted(map(str, range(5)))]}}


def test_deleted_records_stay_read_by_id_when_their_datatype_is_read_whole() -> None:
    work = {Key(P, "webcrm", str(i)): _hook(0) for i in range(MAX_READS + 1)}
    work[Key(P, "webcrm", "gone")] = _hook(0, deleted=True)
    job = Job.of(work)
    assert job.only == [P] and job.records == {P: {"webcrm": ["gone"]}} and not job.sweep
    # More deletes than are worth reading one by one: the run sweeps instead.
    work = {Key(P, "webcrm", str(i)): _hook(0, deleted=True) for i in range(MAX_READS + 1)}
    job = Job.of(work)
    assert job.only == [P] and job.records == {} and job.sweep


def test_due_hook_work_takes_the_hook_work_it_depends_on_along() -> None:
    q = WorkQueue()
    q.add([Key(ORD, "webshop", "o-1")], _hook(0.0, source="webshop"))
    q.add([Key(C, "webshop", "c-1")], _hook(0.1, source="webshop"))  # not due yet
    q.add([Key(L, "webcrm", "9")], _hook(0.1))  # downstream: stays queued
    job = q.take_due(DEBOUNCE, True)
    assert job is not None
    assert job.datatypes == [C, ORD]
    assert job.records == {C: {"webshop": ["c-1"]}, ORD: {"webshop": ["o-1"]}}
    assert q.counts()[L] == 1


def test_a_poll_waits_for_the_budget_and_never_goes_before_hook_work() -> None:
    q = WorkQueue()
    q.add([Key(dt) for dt in Datatype], Work("poll", 0.0))
    assert q.take_due(0.0, False) is None
    assert min(q.dues()) == 1.0  # pushed back a second
    q.add([Key(C, "webcrm", "5")], _hook(0.5))
    job = q.take_due(1.0, False)
    assert job is not None and job.trigger == "hook"
    assert job.only == [] and job.records == {C: {"webcrm": ["5"]}}  # the polls still wait
    job = q.take_due(1.0, True)
    assert job is not None and job.trigger == "poll" and job.only is None


def test_requeued_work_keeps_its_hints_and_kind() -> None:
    q = WorkQueue()
    q.add([Key(C, "webcrm", "1")], _hook(0.0, deleted=True))
    job = q.take_due(1.0, True)
    assert job is not None
    q.requeue(job, 5.0)
    assert q.take_due(4.0, True) is None
    again = q.take_due(5.0, True)
    assert again is not None and again.work[Key(C, "webcrm", "1")].deleted
    assert again.work[Key(C, "webcrm", "1")].hinted == {"webcrm": 0.0}
