#!/usr/bin/env python3
"""Property test of turbo.h's JSON writer against Python's json module.

Runs `test_json --gen N SEED` (see tests/test_json.c) and checks each line:
  F  100 random doubles: json.loads gives back the same bits, and the text
     is byte for byte json.dumps of the same floats (Python's repr digits).
  S  a random byte string: json.loads gives bytes.decode("utf-8", "replace")
     (the same maximal-subpart U+FFFD rule), and the text is exactly what
     json.dumps(ensure_ascii=False) writes with U+2028/U+2029 escaped.
  V  a random document: json.loads gives exactly the expected values (types,
     float bits, key order and duplicates), and the text equals a reference
     serialisation built from json.dumps pieces.
Every line must also be strict UTF-8 with no raw U+2028/U+2029.

usage: test_json_roundtrip.py [path/to/test_json] [N] [SEED] [-k WORD...]
       (defaults: build/test_json, 10000 -> 1,000,000 doubles, a random seed;
       -k: only the kinds whose name has a word: doubles, strings, documents)
Last line: "N passed, N failed"; exit status 1 on any failure.
"""
import json
import random
import struct
import subprocess
import sys


def reject_constant(name):
    raise ValueError("non-JSON constant " + name)


def loads(text):
    return json.loads(text, parse_constant=reject_constant,
                      object_pairs_hook=lambda pairs: ("object", pairs))


def dumps_str(s):
    out = json.dumps(s, ensure_ascii=False)
    return out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def float_bits(x):
    return struct.pack(">d", x)


def parse_tokens(tokens, i):
    """The expected value at tokens[i] and the index after it."""
    t = tokens[i]
    if t == "[":
        items, i = [], i + 1
        while tokens[i] != "]":
            v, i = parse_tokens(tokens, i)
            items.append(v)
        return items, i + 1
    if t == "{":
        pairs, i = [], i + 1
        while tokens[i] != "}":
            key = bytes.fromhex(tokens[i][1:]).decode("utf-8", "replace")
            v, i = parse_tokens(tokens, i + 1)
            pairs.append((key, v))
        return ("object", pairs), i + 1
    kind, rest = t[0], t[1:]
    if kind == "s":
        return bytes.fromhex(rest).decode("utf-8", "replace"), i + 1
    if kind in "iu":
        return int(rest), i + 1
    if kind == "d":
        return struct.unpack(">d", bytes.fromhex(rest))[0], i + 1
    return {"t": True, "f": False, "n": None}[kind], i + 1


def reference_text(v):
    if isinstance(v, tuple):
        return "{" + ",".join(dumps_str(k) + ":" + reference_text(x) for k, x in v[1]) + "}"
    if isinstance(v, list):
        return "[" + ",".join(reference_text(x) for x in v) + "]"
    if isinstance(v, str):
        return dumps_str(v)
    return json.dumps(v)


def same(a, b):
    """Exact equality: same types, float bits, order and duplicates."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return float_bits(a) == float_bits(b)
    if isinstance(a, tuple):
        return len(a[1]) == len(b[1]) and all(
            ka == kb and same(va, vb) for (ka, va), (kb, vb) in zip(a[1], b[1]))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


class Tally:
    def __init__(self):
        self.passed = self.failed = 0
        self.shown = 0

    def check(self, ok, count, what):
        if ok:
            self.passed += count
            return
        self.failed += count
        if self.shown < 10:
            self.shown += 1
            print("FAIL:", what[:600], file=sys.stderr)


def check_doubles(t, text, hexbits):
    want = bytes.fromhex(hexbits)
    expected = list(struct.unpack(">%dd" % (len(want) // 8), want))
    try:
        got = loads(text)
    except ValueError as e:
        t.check(False, len(expected), "F does not parse (%s): %s" % (e, text))
        return
    if text == json.dumps(expected, separators=(",", ":")) and \
            struct.pack(">%dd" % len(got), *got) == want:
        t.check(True, len(expected), "")
        return
    for x, y in zip(expected, got):  # name the culprits
        t.check(float_bits(x) == float_bits(y) and json.dumps(y) == repr(x), 1,
                "F double %r (bits %s) written as %s" % (x, float_bits(x).hex(), json.dumps(y)))


def check_string(t, text, hexbytes):
    raw = b"" if hexbytes == "-" else bytes.fromhex(hexbytes)
    want = raw.decode("utf-8", "replace")
    try:
        got = loads(text)
    except ValueError as e:
        t.check(False, 1, "S does not parse (%s): %s" % (e, text))
        return
    t.check(got == want and text == dumps_str(want), 1,
            "S input %s: got %s, want %s" % (raw.hex(), text, dumps_str(want)))


def check_document(t, text, tokens):
    expected, end = parse_tokens(tokens, 0)
    assert end == len(tokens)
    try:
        got = loads(text)
    except ValueError as e:
        t.check(False, 1, "V does not parse (%s): %s" % (e, text))
        return
    t.check(same(got, expected) and text == reference_text(expected), 1,
            "V got %s, want %s" % (text, reference_text(expected)))


KINDS = {"F": "doubles", "S": "strings", "V": "documents"}


def main():
    args = sys.argv[1:sys.argv.index("-k")] if "-k" in sys.argv else sys.argv[1:]
    words = sys.argv[sys.argv.index("-k") + 1:] if "-k" in sys.argv else []
    exe = args[0] if args else "build/test_json"
    n = int(args[1]) if len(args) > 1 else 10000
    seed = int(args[2]) if len(args) > 2 else random.getrandbits(63)
    print("test_json_roundtrip: %s --gen %d %d" % (exe, n, seed))
    proc = subprocess.run([exe, "--gen", str(n), str(seed)], stdout=subprocess.PIPE)
    t = Tally()
    t.check(proc.returncode == 0, 1, "generator exited with %d" % proc.returncode)
    lines = proc.stdout.split(b"\n")
    t.check(lines[-1] == b"" and len(lines) == 3 * n + 1, 1,
            "generator wrote %d lines, want %d" % (len(lines) - 1, 3 * n))
    for raw in lines[:-1]:
        try:
            line = raw.decode("utf-8")  # strict: the writer never emits invalid UTF-8
        except UnicodeDecodeError as e:
            t.check(False, 1, "invalid UTF-8 output (%s): %r" % (e, raw[:200]))
            continue
        if "\u2028" in line or "\u2029" in line:
            t.check(False, 1, "raw U+2028/U+2029 in output: %r" % line[:200])
            continue
        kind, text, expect = line.split("\t")
        if words and not any(w in KINDS[kind] for w in words):
            continue
        if kind == "F":
            check_doubles(t, text, expect)
        elif kind == "S":
            check_string(t, text, expect)
        else:
            check_document(t, text, expect.split())
    if t.failed:
        print("seed %d reproduces the failures" % seed, file=sys.stderr)
    print("%d passed, %d failed" % (t.passed, t.failed))
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
