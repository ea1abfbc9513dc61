"""Run long jobs that depend on each other on a few worker processes, the longest chain first.

A study such as ``make family`` trains a dozen models, some of which need a shared stage first (the X3Ds
need their pretraining, every 2-D model the 2-D pretraining). :func:`run_jobs` keeps ``workers`` processes
busy: whenever one is free it starts, among the jobs whose prerequisites are done, the one heading the longest
chain of expected seconds still to come (its own and its longest line of dependents), so that the critical path
starts first and the workers finish together. The jobs run in ``workers`` spawned processes, each reused from
job to job (one thread each, as the trainer sets); they share nothing but the on-disk cache, so a job that reads
the cache sees what the jobs before it wrote. A job must not depend on what an earlier job left in its process
(the trainer seeds every run itself: ``make family``'s numbers came out the same as when its studies ran one
after the other).

Expected seconds only order the jobs (any unit will do, the same for all: the benchmark uses MACs times epochs);
a wrong guess costs time, never correctness.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable

from tqdm.auto import tqdm


@dataclass(frozen=True)
class Job:
    """``fn(*args)`` (``fn`` a module-level function, so a spawned process can import it), expected to take about
    ``seconds``, started once every job named in ``after`` has finished."""

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    seconds: float = 60.0
    after: tuple[str, ...] = ()


def chain_seconds(jobs: list[Job]) -> dict[str, float]:
    """For every job, its expected seconds plus the longest chain of its dependents' (the time from its start to
    the end of everything that waits on it). Raises ``ValueError`` naming an unknown prerequisite or a cycle."""
    names = {j.name for j in jobs}
    if len(names) != len(jobs):
        raise ValueError(f"jobs: names must be unique, got {[j.name for j in jobs]}")
    for j in jobs:
        unknown = [a for a in j.after if a not in names]
        if unknown:
            raise ValueError(f"job {j.name!r}: after={unknown} names no job; expected some of {sorted(names)}")
    dependents: dict[str, list[Job]] = {j.name: [] for j in jobs}
    for j in jobs:
        for a in j.after:
            dependents[a].append(j)
    memo: dict[str, float] = {}

    def tail(job: Job, path: tuple[str, ...]) -> float:
        if job.name in path:
            raise ValueError(f"jobs: a cycle through {' -> '.join(path + (job.name,))}")
        if job.name not in memo:
            memo[job.name] = job.seconds + max((tail(d, path + (job.name,)) for d in dependents[job.name]), default=0)
        return memo[job.name]

    return {j.name: tail(j, ()) for j in jobs}


def _failed(job: Job, error: Exception) -> RuntimeError:
    return RuntimeError(f"job {job.name!r} failed: {type(error).__name__}: {error}")


def run_jobs(jobs: list[Job], workers: int = 2, desc: str = "jobs") -> dict[str, tuple[Any, float]]:
    """Run every job (see the module docstring); ``workers <= 1`` runs them in this process, in the same order.
    Returns ``{name: (what fn returned, wall seconds)}``. A job that raises stops the run: the jobs already started
    finish (what they cached is kept), none is started after, and the error is raised again naming the job."""
    priority = chain_seconds(jobs)
    pending = {j.name: j for j in jobs}
    done: dict[str, tuple[Any, float]] = {}
    bar = tqdm(total=len(jobs), desc=desc, unit="job")

    def next_ready() -> Job | None:
        ready = [j for j in pending.values() if all(a in done for a in j.after)]
        return max(ready, key=lambda j: priority[j.name], default=None)

    def finish(name: str, value: Any, seconds: float) -> None:
        done[name] = (value, seconds)
        bar.update()
        tqdm.write(f"{name}: {seconds:.0f} s")

    if workers <= 1:
        while (job := next_ready()) is not None:
            del pending[job.name]
            t0 = time.time()
            try:
                value = job.fn(*job.args)
            except Exception as e:
                bar.close()
                raise _failed(job, e) from e
            finish(job.name, value, time.time() - t0)
        bar.close()
        return done

    running: dict[Future, tuple[Job, float]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        while pending or running:
            while len(running) < workers and (job := next_ready()) is not None:
                del pending[job.name]
                running[pool.submit(job.fn, *job.args)] = (job, time.time())
            if not running:  # something pending waits on a job that can never run (cannot happen after chain_seconds)
                raise RuntimeError(f"jobs: {sorted(pending)} wait on jobs that never ran")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job, t0 = running.pop(future)
                try:
                    value = future.result()
                except Exception as e:
                    pending.clear()  # start nothing more; the running ones finish when the pool closes
                    bar.close()
                    raise _failed(job, e) from e
                finish(job.name, value, time.time() - t0)
    bar.close()
    return done
