#!/usr/bin/env python3
"""Generates the compressed power-of-ten table of turbo_dtoa (turbo.h).

turbo_dtoa (Schubfach) needs, for every e in [-292, 324], the 128-bit
    g(e) = floor(10^e * 2^(127 - beta(e))) + 1,   beta(e) = floor(log2(10^e)),
so that 2^127 < g(e) < 2^128.  Instead of 617 entries we store every 28th
floor value (a "base") and rebuild the others at run time:
    F(e) = floor(base(e0) * 5^r / 2^sh),  r = e - e0 in [0, 27],
    sh = beta(e) - beta(e0) - r,
which is at most two below the exact floor; the difference is stored in two
bits per e.  This script checks every claim it relies on (the log
approximations, the shift range, the size of the corrections) and prints the
C tables.  Run: python3 tests/gen_pow10.py > /tmp/tables.c
With --full it prints every g(e) instead, one "e hi lo" per line: the C
reconstruction (tb__dtoa_pow10) was checked against it, entry for entry.
"""
import sys
from fractions import Fraction

E_MIN, E_MAX, STEP = -292, 324, 28
Q_MIN, Q_MAX = -1074, 971  # v = c * 2^q, c < 2^53


def floor_log2_pow10(e):
    # exact: largest b with 2^b <= 10^e (10^-n is never a power of two)
    if e >= 0:
        return (10 ** e).bit_length() - 1
    return -((10 ** -e).bit_length())


def floor_div_pow(num, den, shift):
    if shift >= 0:
        return (num << shift) // den
    return num // (den << -shift)


def t_floor(e):
    beta = floor_log2_pow10(e)
    num, den = (10 ** e, 1) if e >= 0 else (1, 10 ** -e)
    f = floor_div_pow(num, den, 127 - beta)
    assert 1 << 127 <= f < 1 << 128, e
    return f


def floor_log10(x):
    # exact: largest k with 10^k <= x, for a positive Fraction x
    k = len(str(x.numerator)) - len(str(x.denominator)) - 1
    while Fraction(10) ** (k + 1) <= x:
        k += 1
    while Fraction(10) ** k > x:
        k -= 1
    return k


def floor_log10_pow2(q):
    return floor_log10(Fraction(2) ** q)


def floor_log10_three_quarters_pow2(q):
    return floor_log10(Fraction(3, 4) * Fraction(2) ** q)


def check_log_approximations():
    for q in range(Q_MIN - 2, Q_MAX + 3):
        assert (q * 315653) >> 20 == floor_log10_pow2(q), q
        assert (q * 315653 - 131237) >> 20 == floor_log10_three_quarters_pow2(q), q
    for e in range(E_MIN - 2, E_MAX + 3):
        assert (e * 1741647) >> 19 == floor_log2_pow10(e), e
    # the biases the C code adds to keep the shifted numbers non-negative
    assert (Q_MIN - 2) * 315653 - 131237 + (1024 << 20) >= 0
    assert (Q_MAX + 2) * 315653 + (1024 << 20) < 1 << 31
    assert (E_MIN - 2) * 1741647 + (1024 << 19) >= 0
    assert (E_MAX + 2) * 1741647 + (1024 << 19) < 1 << 31


def check_shift_range():
    # h = q + beta(-k) + 1 must keep (4c + 2) << h below 2^64
    for q in range(Q_MIN, Q_MAX + 1):
        for k in {floor_log10_pow2(q), floor_log10_three_quarters_pow2(q)}:
            assert E_MIN <= -k <= E_MAX, (q, k)
            h = q + floor_log2_pow10(-k) + 1
            assert 1 <= h <= 4, (q, h)


def build():
    bases, corr = [], 0
    for e in range(E_MIN, E_MAX + 1):
        i, r = divmod(e - E_MIN, STEP)
        e0 = E_MIN + STEP * i
        if r == 0:
            bases.append(t_floor(e))
        sh = floor_log2_pow10(e) - floor_log2_pow10(e0) - r
        assert (sh == 0) if r == 0 else (1 <= sh < 64)
        assert 5 ** r < 1 << 64
        approx = (bases[i] * 5 ** r) >> sh
        assert approx < 1 << 128
        d = t_floor(e) - approx
        assert t_floor(e) + 1 < 1 << 128
        assert 0 <= d <= 3, (e, d)
        corr |= d << (2 * (e - E_MIN))
    return bases, corr


def main():
    check_log_approximations()
    check_shift_range()
    bases, corr = build()
    if sys.argv[1:] == ["--full"]:
        for e in range(E_MIN, E_MAX + 1):
            g = t_floor(e) + 1
            print(e, "%016x" % (g >> 64), "%016x" % (g & (2 ** 64 - 1)))
        return
    print("static const uint64_t tb__dtoa_pow10_base[%d][2] = {" % len(bases))
    for i in range(0, len(bases), 2):
        row = ", ".join("{0x%016x, 0x%016x}" % (b >> 64, b & (2 ** 64 - 1))
                        for b in bases[i:i + 2])
        print("    " + row + ",")
    print("};")
    print("static const uint64_t tb__dtoa_pow5[%d] = {" % STEP)
    p5 = ["%du" % 5 ** r for r in range(STEP)]
    for i in range(0, STEP, 4):
        print("    " + ", ".join(p5[i:i + 4]) + ",")
    print("};")
    words = (2 * (E_MAX - E_MIN + 1) + 63) // 64
    print("static const uint64_t tb__dtoa_pow10_fix[%d] = {" % words)
    ws = ["0x%016x" % ((corr >> (64 * w)) & (2 ** 64 - 1)) for w in range(words)]
    for i in range(0, words, 4):
        print("    " + ", ".join(ws[i:i + 4]) + ",")
    print("};")


if __name__ == "__main__":
    main()
