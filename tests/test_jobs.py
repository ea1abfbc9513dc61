"""adafocus.jobs: jobs with prerequisites on worker processes, the longest chain first."""

from __future__ import annotations

import time

import pytest

from adafocus.jobs import Job, chain_seconds, run_jobs


def stamp(seconds: float) -> tuple[float, float]:
    """A job: sleep ``seconds``; return when it started and ended."""
    t0 = time.time()
    time.sleep(seconds)
    return t0, time.time()


def fail() -> None:
    raise OSError("disk full")


def test_chain_seconds_counts_the_longest_line_of_dependents():
    jobs = [Job("a", stamp, seconds=10), Job("b", stamp, seconds=5, after=("a",)),
            Job("c", stamp, seconds=30, after=("a",)), Job("d", stamp, seconds=1, after=("b", "c")),
            Job("e", stamp, seconds=20)]
    assert chain_seconds(jobs) == {"a": 41, "b": 6, "c": 31, "d": 1, "e": 20}


@pytest.mark.parametrize("jobs, message", [
    ([Job("a", stamp, after=("z",))], r"after=\['z'\] names no job"),
    ([Job("a", stamp, after=("b",)), Job("b", stamp, after=("a",))], "a cycle through"),
    ([Job("a", stamp), Job("a", stamp)], "names must be unique"),
])
def test_bad_job_lists_are_refused_before_anything_runs(jobs, message):
    with pytest.raises(ValueError, match=message):
        run_jobs(jobs, workers=1)


def test_in_process_order_is_the_longest_chain_first_and_prerequisites_first():
    jobs = [Job("short", stamp, (0.0,), 1), Job("head", stamp, (0.0,), 2),
            Job("tail", stamp, (0.0,), 10, after=("head",))]
    done = run_jobs(jobs, workers=1)
    start = {name: value[0][0] for name, value in done.items()}
    assert sorted(start, key=start.get) == ["head", "tail", "short"]


def test_workers_run_side_by_side_and_wait_for_prerequisites():
    jobs = [Job("first", stamp, (0.6,), 5), Job("beside", stamp, (0.6,), 4),
            Job("then", stamp, (0.0,), 1, after=("first",))]
    done = run_jobs(jobs, workers=2)
    (first0, first1), (beside0, beside1), (then0, _) = (done[k][0] for k in ("first", "beside", "then"))
    assert beside0 < first1 and first0 < beside1  # the two overlapped
    assert then0 >= first1  # started only once its prerequisite had finished
    assert all(seconds >= 0 for _, seconds in done.values())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_is_named_and_nothing_starts_after_it(tmp_path, workers):
    later = tmp_path / "later ran"
    jobs = [Job("broken", fail, seconds=50), Job("after", later.touch, seconds=1, after=("broken",)),
            Job("independent", later.touch, seconds=1)]
    if workers == 2:  # the second worker takes "independent" beside "broken": only "after" must not run
        jobs = jobs[:2]
    with pytest.raises(RuntimeError, match="job 'broken' failed: OSError: disk full"):
        run_jobs(jobs, workers=workers)
    assert not later.exists()
