"""What the native module needs written in Python, imported once by turbo._turbo.

Nothing here runs for an ordinary request: Headers is built only for handlers that read
request.headers, plain() only for results that are not JSON types, and the asyncio loop's
methods once per process (start, stop) and once per awaited coroutine (submit).
"""
import asyncio
import dataclasses
import datetime
import decimal
import enum
import pathlib
import threading
import types
import uuid
from json import JSONDecodeError, loads  # noqa: F401  (the module takes them from here)


class Headers(dict):
    """Request headers, names in lower case, read in any case as Starlette's are."""

    def __getitem__(self, name):
        return dict.__getitem__(self, str(name).lower())

    def get(self, name, default=None):
        return dict.get(self, str(name).lower(), default)

    def __contains__(self, name):
        return dict.__contains__(self, str(name).lower())


def plain(o):
    """The JSON form of an object that is no JSON type, as FastAPI's jsonable_encoder gives it."""
    if isinstance(o, enum.Enum):
        return o.value
    if isinstance(o, (set, frozenset, types.GeneratorType)):
        return list(o)
    if isinstance(o, (datetime.date, datetime.time)):
        return o.isoformat()
    if isinstance(o, datetime.timedelta):
        return o.total_seconds()
    if isinstance(o, (uuid.UUID, pathlib.PurePath)):
        return str(o)
    if isinstance(o, decimal.Decimal):
        return int(o) if o.as_tuple().exponent >= 0 else float(o)
    if isinstance(o, bytes):
        return o.decode()
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    return NotImplemented


async def _guard(coro):
    """A KeyboardInterrupt or SystemExit in a handler must not stop the loop."""
    try:
        return await coro
    except (KeyboardInterrupt, SystemExit) as e:
        raise RuntimeError("handler raised " + type(e).__name__) from e


class Loop:
    """The asyncio loop of a serving process, in a daemon thread of its own."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="turbo-asyncio",
                                       daemon=True)
        self.thread.start()

    def submit(self, coro):
        return asyncio.run_coroutine_threadsafe(_guard(coro), self.loop)

    def stop(self):
        """Stops the loop, then cancels the tasks still pending, so that their finally blocks run."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()
