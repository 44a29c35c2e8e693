"""The sweep's progress bar counts runs: with repeats a point's every run is its own share of the bar (one per
point without repeats: tests/test_newcomer.py)."""

from __future__ import annotations

import io

from rich.console import Console

from tests.conftest import SMALL_SPEC
from trtbench.commands.progress import ProgressBar
from trtbench.executors.base import Task
from trtbench.grid import IdentityRule, expand
from trtbench.spec import parse_spec


def test_repeats_fill_the_bar_exactly_once():
    # Point A three times (10 s each), point B once without a prediction (weighs the mean of the known: 10 s):
    # the bar is 40 s long, half full after two runs, full after four, never over.
    a, b = expand(parse_spec(SMALL_SPEC), IdentityRule(()))[:2]
    tasks = [Task(a, expected_s=10.0), Task(b), Task(a, expected_s=10.0, round=1), Task(a, expected_s=10.0, round=2)]
    with ProgressBar(Console(file=io.StringIO()), "trtllm") as bar:
        bar.begin(6, 2, tasks)
        shown = bar.progress.tasks[0]
        assert (shown.total, shown.completed, shown.fields["points"]) == (40.0, 0, "0/4 runs (2 points done before)")
        for task in tasks[:2]:
            bar.started(task)
            bar.finished(task, None)  # type: ignore[arg-type]  # the bar does not read the record
        assert (shown.completed, shown.fields["points"]) == (20.0, "2/4 runs (2 points done before)")
        for task in tasks[2:]:
            bar.finished(task, None)  # type: ignore[arg-type]
        assert (shown.completed, shown.total, shown.fields["points"]) == (40.0, 40.0, "4/4 runs (2 points done before)")


def test_a_lost_run_ends_its_share_of_the_bar_and_is_counted_apart():
    # Two points of 10 s and 30 s; the second's keeper is killed from outside: no record, but it runs no more.
    a, b = expand(parse_spec(SMALL_SPEC), IdentityRule(()))[:2]
    tasks = [Task(a, expected_s=10.0), Task(b, expected_s=30.0)]
    with ProgressBar(Console(file=io.StringIO()), "trtllm") as bar:
        bar.begin(2, 0, tasks)
        shown = bar.progress.tasks[0]
        bar.finished(tasks[0], None)  # type: ignore[arg-type]  # the bar does not read the record
        bar.lost(tasks[1], "the point's keeper was killed from outside (SIGKILL), its benchmark with it")
        assert (shown.completed, shown.total, shown.fields["points"]) == (40.0, 40.0, "1/2 points, 1 lost")

