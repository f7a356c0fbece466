"""JSON decoding of request bodies: turbo's decoder (turbo._turbo.json_loads,
what a route's body parameter and Request.json() use) against json.loads and,
when it is installed, orjson.loads, in one run.

Two documents: the 1 KiB body of a typical API call (a nested object with
ints, floats, booleans, null, strings with accents, escapes and emoji) and
a 120 KiB list of such objects. Each decoder runs for ~0.2 s per round,
rounds alternate, the best round counts; every decoder's result is first
checked equal to json.loads'.

    python3 bench/json_decode.py
    python3 bench/json_decode.py --loop turbo 1000   # decodes the API body 1,000 times

--loop is for counting instructions: under valgrind --tool=callgrind, the
counts of 1,000 and of 3,000 decodes differ by what 2,000 decodes cost.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from turbo import _turbo  # noqa: E402

try:
    import orjson
except ImportError:
    orjson = None

ROUNDS = 5


def api_body(i):
    return {
        "id": 1234567 + i,
        "name": "Zoë Ångström-%d" % i,
        "email": "zoe%d@example.com" % i,
        "active": i % 2 == 0,
        "score": 97.25 + i / 7,
        "ratio": -0.001953125,
        "manager": None,
        "tags": ["admin", "beta", "café", "日本語", "😀"],
        "address": {"street": "12 \"Quoted\" Lane\nFlat 3", "city": "Reykjavík",
                    "zip": "101", "geo": {"lat": 64.1466, "lng": -21.9426}},
        "orders": [{"sku": "A-%d" % k, "qty": k, "price": 19.99 * k, "gift": k == 2}
                   for k in range(1, 5)],
        "notes": "line one\tline two\\ back\u2028sep",
        "created": "2026-11-30T21:12:15Z",
        "history": [{"at": 1764536000 + k * 3600, "event": "login", "ip": "192.0.2.%d" % k, "ok": k != 3}
                    for k in range(4)],
    }


def best_rate(fn, doc):
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.2:
        for _ in range(100):
            fn(doc)
        runs += 100
    return (time.perf_counter() - start) / runs


def main():
    docs = {
        "1 KiB API body": json.dumps(api_body(0), ensure_ascii=False).encode(),
        "120 KiB list": json.dumps([api_body(i) for i in range(120)], ensure_ascii=False).encode(),
    }
    decoders = {"json.loads": json.loads, "turbo": _turbo.json_loads}
    if orjson:
        decoders["orjson.loads"] = orjson.loads
    print("| document | bytes | " + " | ".join(f"{n} µs" for n in decoders) + " | turbo / json.loads |"
          + (" turbo / orjson |" if orjson else ""))
    print("|---|---:|" + "---:|" * len(decoders) + "---:|" + ("---:|" if orjson else ""))
    for name, doc in docs.items():
        expected = json.loads(doc)
        for dname, fn in decoders.items():
            if fn(doc) != expected:
                sys.exit(f"{dname} decodes {name} differently from json.loads")
        best = {d: float("inf") for d in decoders}
        for _ in range(ROUNDS):
            for dname, fn in decoders.items():
                best[dname] = min(best[dname], best_rate(fn, doc))
        row = [f"{best[d] * 1e6:.2f}" for d in decoders]
        ratios = f" {best['turbo'] / best['json.loads']:.2f}x |"
        if orjson:
            ratios += f" {best['turbo'] / best['orjson.loads']:.2f}x |"
        print(f"| {name} | {len(doc):,} | " + " | ".join(row) + " |" + ratios)


def loop(decoder, n):
    doc = json.dumps(api_body(0), ensure_ascii=False).encode()
    decode = {"turbo": _turbo.json_loads, "json.loads": json.loads, "orjson": orjson and orjson.loads}[decoder]
    for _ in range(n):
        decode(doc)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--loop"]:
        loop(sys.argv[2], int(sys.argv[3]))
    else:
        main()
