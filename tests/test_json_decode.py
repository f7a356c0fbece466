"""turbo's JSON decoder for request bodies (turbo._turbo.json_loads) against
json.loads: for every document, the same objects (same types, same order of
keys, floats to the bit, NaN and -0.0 included), or, for a document it is
not to take, the same exception with the same message and position.

Documents: a table of edge cases (numbers at every boundary of the fast
paths, escapes, surrogates alone and in pairs, duplicate keys, deep
nesting, every kind of invalid input), 3,000 random valid documents, and
3,000 mutations of them (cut short, a byte changed, inserted or removed);
1,000 documents of long strings (runs of ASCII between other characters),
and 1,000 mutations of them.

Usage: python3 tests/test_json_decode.py [-k WORD]
"""
import json
import math
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from turbo import _turbo  # noqa: E402

CASES = [
    b"0", b"-0", b"1", b"-1", b"123456789012345678", b"-123456789012345678", b"1234567890123456789",
    b"99999999999999999999999", b"-99999999999999999999", b"01", b"-", b"+1", b"1.", b".5", b"1e", b"1e+",
    b"0.1", b"-0.0", b"0.30000000000000004", b"1e22", b"1e23", b"1e-22", b"1e-23", b"123456789012345e22",
    b"1234567890123456e-5", b"9007199254740993", b"9007199254740993.0", b"2.2250738585072011e-308",
    b"4.9e-324", b"1e-400", b"1e400", b"-1e400", b"1.7976931348623157e308", b"1E5", b"1e05", b"0e0",
    b"0.000000000000000000000000000001", b"1" + b"0" * 60 + b".5", b"NaN", b"Infinity", b"-Infinity",
    b"nan", b"infinity", b"-NaN", b"true", b"false", b"null", b"tru", b"nul", b"True",
    b'""', b'"a"', b'"\\n\\t\\r\\b\\f\\/\\\\\\""', b'"\\u00e9\\u00E9"', b'"\\ud83d\\ude00"', b'"\\ud800"',
    b'"\\udc00"', b'"\\ud800\\u0041"', b'"\\ud800\\ud800\\udc00"', b'"\\u12"', b'"\\x"', b'"\\',
    b'"abc', b'"a\x01b"', b'"a\x7fb"', '"é日本😀"'.encode(), b'"\xed\xa0\x80"', b'"\xc3"', b'"\xff"',
    b'"\xc0\x80"', b'"\xf4\x90\x80\x80"', b"\xef\xbb\xbf{}", b"{}", b"[]", b"[1,]", b"[,1]", b"{,}",
    b'{"a":1,}', b'{"a" 1}', b'{"a":}', b"{1:2}", b'{"a":1,"a":2,"b":3,"a":4}', b"  [1, 2 ]  ",
    b"[1] [2]", b"[1] x", b"", b"   ", b"\t\n\r[\t\n\r]\t\n\r", b"\x0b[]", b"[" * 199 + b"]" * 199,
    b"[" * 200 + b"]" * 200, b"[" * 5000 + b"]" * 5000, b'{"a":' * 300 + b"1" + b"}" * 300,
    "[1]".encode("utf-16"), "[1]".encode("utf-32-le"), b'"' + b"x" * 100000 + b'"',
    b'{"' + b"k" * 40 + b'":1}', b'[' + b'"\\u0041",' * 1000 + b'0]',
]

WORDS = ["id", "name", "a", "", "é", "日本", "😀", "\ud800", "\n", "\"", "\\", "\x00", "\x1f", "\u2028", "key" * 20]


def long_str(rng):
    """Runs of plain ASCII, which the decoder skips 16 bytes at a time, between other characters."""
    return "".join("x" * rng.randrange(0, 40) + rng.choice(WORDS) for _ in range(rng.randrange(1, 8)))


def rand_str(rng):
    return "".join(rng.choice(WORDS) if rng.random() < 0.3 else chr(rng.choice(
        [rng.randrange(32, 127), rng.randrange(0, 0x800), rng.randrange(0, 0x110000)]))
        for _ in range(rng.randrange(0, 12)))


def rand_number(rng):
    kind = rng.randrange(7)
    if kind == 0:
        return rng.randrange(-10 ** rng.randrange(1, 25), 10 ** rng.randrange(1, 25))
    if kind == 1:
        return struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
    if kind == 2:
        return round(rng.uniform(-1e6, 1e6), rng.randrange(0, 16))
    if kind == 3:
        return float(f"{rng.randrange(1, 10 ** rng.randrange(1, 18))}e{rng.randrange(-30, 30)}")
    if kind == 4:
        return rng.choice([0, -0.0, 0.0, 1e22, 1e23, 5e-324, 2 ** 53, 2 ** 53 + 1, float(2 ** 53 + 1)])
    return rng.random() * 10 ** rng.randrange(-5, 25)


def rand_value(rng, depth=0):
    k = rng.randrange(8 if depth < 6 else 4)
    if k == 0:
        return rand_number(rng)
    if k == 1:
        return rand_str(rng)
    if k == 2:
        return rng.choice([True, False, None])
    if k == 3:
        return rand_number(rng)
    if k in (4, 5):
        return [rand_value(rng, depth + 1) for _ in range(rng.randrange(0, 6))]
    return {rand_str(rng) if rng.random() < 0.5 else rng.choice(WORDS): rand_value(rng, depth + 1)
            for _ in range(rng.randrange(0, 6))}


def encode(rng, value):
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5, allow_nan=True,
                      indent=rng.choice([None, None, 1, "\t"]))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only its \u escape goes
        return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def mutate(rng, doc):
    if not doc:
        return b"["
    i = rng.randrange(len(doc))
    k = rng.randrange(4)
    if k == 0:
        return doc[:i]
    if k == 1:
        return doc[:i] + bytes([rng.randrange(256)]) + doc[i + 1:]
    if k == 2:
        return doc[:i] + bytes([rng.choice(b'{}[]",:\\0-.eE\x00\x80\xff ')]) + doc[i:]
    return doc[:i] + doc[i + 1:]


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def outcome(fn, doc):
    try:
        return ("ok", fn(doc))
    except Exception as e:  # noqa: BLE001: the exception is what is compared
        return ("error", type(e), str(e))


def check(doc):
    want, got = outcome(json.loads, doc), outcome(_turbo.json_loads, doc)
    if want[0] != got[0]:
        return False
    return same(want[1], got[1]) if want[0] == "ok" else want == got


def main(argv):
    word = argv[argv.index("-k") + 1] if "-k" in argv else ""
    rng = random.Random(20261130)
    groups = {"table": CASES}
    valid = [encode(rng, rand_value(rng)) for _ in range(3000)]
    groups["random"] = valid
    groups["mutated"] = [mutate(rng, rng.choice(valid)) for _ in range(3000)]
    long = [encode(rng, [long_str(rng) for _ in range(rng.randrange(1, 5))]) for _ in range(1000)]
    groups["long strings"] = long
    groups["long strings mutated"] = [mutate(rng, rng.choice(long)) for _ in range(1000)]
    passed = failed = 0
    for name, docs in groups.items():
        if word and word not in name:
            continue
        bad = [d for d in docs if not check(d)]
        for d in bad[:5]:
            print(f"FAIL {name}: {d[:120]!r}: json.loads {outcome(json.loads, d)!r:.200}, "
                  f"turbo {outcome(_turbo.json_loads, d)!r:.200}")
        ok = not bad
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(docs) - len(bad)} of {len(docs)} documents the same")
        passed += ok
        failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
