"""BackgroundTasks, as FastAPI's: functions to call once the answer is made, in order, on a
thread of the process's pool; an exception is logged and the next task still runs. And the
pool of threads that sync functions run on when an async path calls them.
"""
import asyncio
import concurrent.futures
import functools
import inspect
import os
import sys
import traceback

__all__ = ["BackgroundTasks"]

# As many as FastAPI runs at once (anyio's 40 threads): asyncio's own pool has min(32, CPUs + 4).
_POOL_THREADS = 40
_pools = {}  # name -> (pid, executor): made in each process when first needed, after any fork


def process_threads(name, count):
    """This process's pool of count threads called name (made again in a forked child)."""
    pid, pool = _pools.get(name, (None, None))
    if pid != os.getpid():
        pool = concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="turbo-" + name)
        _pools[name] = (os.getpid(), pool)
    return pool


def run_sync(func, *args):
    """Awaitable: func(*args) on this process's pool for sync functions (a dependency, a
    handler behind http middleware, an exception handler), as Starlette's run_in_threadpool."""
    return asyncio.get_running_loop().run_in_executor(process_threads("sync", _POOL_THREADS),
                                                      functools.partial(func, *args))


class BackgroundTasks:
    def __init__(self, tasks=None):
        self.tasks = list(tasks or ())

    def add_task(self, func, *args, **kwargs):
        self.tasks.append((func, args, kwargs))

    def run_later(self):
        if self.tasks:
            process_threads("background", _POOL_THREADS).submit(_run, list(self.tasks))


def _run(tasks):
    for func, args, kwargs in tasks:
        try:
            if inspect.iscoroutinefunction(func):
                asyncio.run(func(*args, **kwargs))
            else:
                func(*args, **kwargs)
        except Exception:
            sys.stderr.write("turbo: background task %s raised\n" % getattr(func, "__name__", func))
            traceback.print_exc()
