"""CPU-heavy work off the event loop, a bounded number of jobs at a time in each process.

Parsing a 目录 sheet or validating a release keeps a CPU busy for seconds; run on the event loop it
stalls every other request of the process (a 616 KB XLSX once held /healthz for 46 s). Such jobs
run in worker threads instead, and all of them share one limiter, so a burst of uploads queues
rather than piling threads onto the cores the loop needs too.
"""

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request

T = TypeVar("T")


class HeavyWork:
    def __init__(self, *, slots: int) -> None:
        self.limiter = anyio.CapacityLimiter(slots)

    async def run(self, job: Callable[[], T]) -> T:
        """`job()` in a worker thread, once one of the slots is free."""
        return await anyio.to_thread.run_sync(job, limiter=self.limiter)


def heavy_work(request: Request) -> HeavyWork:
    work: HeavyWork = request.app.state.heavy_work
    return work


HeavyWorkDep = Annotated[HeavyWork, Depends(heavy_work)]
