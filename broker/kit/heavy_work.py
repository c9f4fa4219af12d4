"""CPU-heavy work off the event loop, a bounded number of jobs at a time in each process.

Parsing a 目录 sheet or validating a release keeps a CPU busy for seconds; run on the event loop it
stalls every other request of the process (a 616 KB XLSX once held /healthz for 46 s). Such jobs
run elsewhere, and all of them share one limiter, so a burst of uploads queues rather than piling
work onto the cores the loop needs too.
"""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request

T = TypeVar("T")


def _in_fresh_process(job: Callable[[], T]) -> T:
    # spawn, not fork: forking a process that runs threads (the loop's, aiosqlite's) can copy
    # a lock some thread holds and deadlock the child.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as worker:
        return worker.submit(job).result()


class HeavyWork:
    def __init__(self, *, slots: int) -> None:
        self.limiter = anyio.CapacityLimiter(slots)

    async def run(self, job: Callable[[], T]) -> T:
        """`job()` in a worker thread once a slot is free.

        For work that spends its time outside the interpreter (polars, hashing, file copies),
        which lets the loop's thread run meanwhile.
        """
        return await anyio.to_thread.run_sync(job, limiter=self.limiter)

    async def run_in_process(self, job: Callable[[], T]) -> T:
        """`job()` in a fresh worker process once a slot is free; `job` must pickle.

        For pure-Python work on large inputs (parsing and checking a sheet). In a thread it
        would hold the GIL, and the millions of objects it builds bring full garbage
        collections that stop every thread of the process for about a second each. A fresh
        process costs a second or two to start and hands all its memory back when it ends.
        """
        async with self.limiter:
            return await anyio.to_thread.run_sync(partial(_in_fresh_process, job))


def heavy_work(request: Request) -> HeavyWork:
    work: HeavyWork = request.app.state.heavy_work
    return work


HeavyWorkDep = Annotated[HeavyWork, Depends(heavy_work)]
