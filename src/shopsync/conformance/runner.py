"""``shopsync check-webshop URL --token T``: run the conformance suite, print a table.

The suite is the behavioural checks of ``checks.py`` followed by two schemathesis passes
over the published contract (``fuzz.py``). Each becomes one row: PASS, FAIL with the
reason, or SKIP with why. The exit code is 0 only when nothing failed. Everything the
suite created is deleted at the end (tombstones remain, as the contract wants).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table

from .checks import CHECKS, Check, check_reachable
from .fuzz import run_fuzz
from .shop import CheckFailed, CheckSkipped, Shop

Status = Literal["pass", "fail", "skip"]
FUZZ_EXAMPLES = 10
"""Schemathesis examples per operation and pass (~300 requests); ``SHOPSYNC_CHECK_EXAMPLES``
sets another number (more for a deeper run, fewer for a quick one)."""
EXAMPLES_ENV = "SHOPSYNC_CHECK_EXAMPLES"


@dataclass(frozen=True)
class Result:
    name: str
    status: Status
    detail: str
    seconds: float


def _run_one(shop: Shop, name: str, check: Check) -> Result:
    started = time.monotonic()
    try:
        detail, status = check(shop), "pass"
    except CheckFailed as exc:
        detail, status = str(exc), "fail"
    except CheckSkipped as exc:
        detail, status = str(exc), "skip"
    except Exception as exc:  # a check that trips over an unexpected answer still reports
        detail, status = f"{exc.__class__.__name__}: {exc}", "fail"
    return Result(name, status, shop.redact(detail), time.monotonic() - started)  # type: ignore[arg-type]


def _fuzz_check(mode: str, examples: int) -> Check:
    def check(shop: Shop) -> str:
        customer = shop.create("customers", shop.customer_body())
        product = shop.create("products", shop.product_body())
        order = shop.create("orders", shop.order_body(customer["id"]))
        ids = {"customers": customer["id"], "products": product["id"], "orders": order["id"]}
        report = run_fuzz(
            shop.url, shop.token, mode=mode, examples=examples, ids=ids, redact=shop.redact
        )
        for collection, record_id in report.created:
            shop.remember(collection, record_id)
        if report.failures:
            lines = [f"{label}: {reason}" for label, reason in report.failures.items()]
            raise CheckFailed(
                f"{len(report.failures)} of {report.operations} operations failed\n"
                + "\n".join(lines)
            )
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(report.statuses.items()))
        if mode == "positive" and not report.statuses.get("2xx"):
            raise CheckFailed(
                f"no valid request was accepted ({answers}): is the token right for every operation?"
            )
        return f"{report.operations} operations, {report.requests} generated requests ({answers})"

    return check


def run_checks(url: str, token: str, *, examples: int = FUZZ_EXAMPLES) -> list[Result]:
    """Run the whole suite against ``url``; the results in table order."""
    shop = Shop(url, token)
    results: list[Result] = []
    try:
        gate = _run_one(shop, "server answers with the token", check_reachable)
        results.append(gate)
        suite: list[tuple[str, Check]] = [
            *CHECKS,
            ("schemathesis: valid requests get documented answers", _fuzz_check("positive", examples)),
            ("schemathesis: invalid requests are refused (4xx)", _fuzz_check("negative", examples)),
        ]  # fmt: skip
        for name, check in suite:
            if gate.status == "fail":
                results.append(Result(name, "skip", "not run: the server did not answer", 0.0))
            else:
                results.append(_run_one(shop, name, check))
    finally:
        left = shop.cleanup()
        shop.close()
    if left:
        results.append(Result("cleanup", "fail", "could not delete: " + ", ".join(left[:10]), 0.0))
    return results


def render(results: list[Result], url: str, console: Console) -> None:
    table = Table(title=f"Custom Webshop API conformance — {url}", show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("check")
    table.add_column("result")
    table.add_column("details", overflow="fold")
    table.add_column("s", justify="right", style="dim")
    marks = {
        "pass": "[green]PASS[/green]",
        "fail": "[bold red]FAIL[/bold red]",
        "skip": "[yellow]SKIP[/yellow]",
    }
    for number, result in enumerate(results, start=1):
        table.add_row(
            str(number), result.name, marks[result.status], result.detail, f"{result.seconds:.1f}"
        )
    console.print(table)


def summary(results: list[Result]) -> str:
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    return f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"


def run_conformance(url: str, token: str) -> int:
    """The ``check-webshop`` command: 0 when every check passed (or was skipped)."""
    console = Console(highlight=False)
    started = time.monotonic()
    examples = FUZZ_EXAMPLES
    if os.environ.get(EXAMPLES_ENV):
        try:
            examples = max(1, int(os.environ[EXAMPLES_ENV]))
        except ValueError:
            console.print(f"[red]{EXAMPLES_ENV} must be a whole number[/red]")
            return 2
    results = run_checks(url, token, examples=examples)
    render(results, url, console)
    failed = any(r.status == "fail" for r in results)
    verdict = "[bold red]does not conform[/bold red]" if failed else "[green]conforms[/green]"
    console.print(f"{summary(results)} in {time.monotonic() - started:.1f} s: the shop {verdict}.")
    return 1 if failed else 0
