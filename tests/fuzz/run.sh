#!/usr/bin/env bash
# Builds and runs turbo's libFuzzer targets.
#
#   tests/fuzz/run.sh [fuzz] [target...]   fuzz each target FUZZ_SECONDS (60)
#   tests/fuzz/run.sh smoke [target...]    replay the seed corpus and every
#                                          regression input, then fuzz each
#                                          target FUZZ_SMOKE_SECONDS (5)
#
# Targets: parser chunked router json multipart simd (default: all, one after another).
# A target may have a second source, tests/fuzz/fuzz_<target>_*.c.
# Needs clang with libFuzzer (Debian: clang, libclang-rt-14-dev).
# Binaries and the growing working corpus live in build/fuzz/; a crash or a
# broken invariant leaves its input in build/fuzz/artifacts/<target>/: minimise
# it (run the binary with -minimize_crash=1 on it) and keep it in
# tests/fuzz/regressions/<target>/. Prints "N passed, N failed" (targets).
set -u
cd "$(dirname "$0")/../.."

mode=fuzz
case "${1:-}" in
fuzz | smoke) mode=$1; shift ;;
esac
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(parser chunked router json multipart simd)

CLANG=${CLANG:-clang}
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
FLAGS="$FLAGS -std=c99 -Wall -Wextra -Werror"
seconds=${FUZZ_SECONDS:-60}
[ "$mode" = smoke ] && seconds=${FUZZ_SMOKE_SECONDS:-5}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

passed=0
failed=0
mkdir -p build/fuzz
for t in "${targets[@]}"; do
    src=tests/fuzz/fuzz_$t.c bin=build/fuzz/fuzz_$t
    seeds=tests/fuzz/corpus/$t regress=tests/fuzz/regressions/$t
    work=build/fuzz/corpus/$t artifacts=build/fuzz/artifacts/$t/
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    [ "$t" = parser ] || [ "$t" = chunked ] || [ "$t" = simd ] && dict=(-dict=tests/fuzz/http.dict)
    [ "$t" = simd ] && seeds=tests/fuzz/corpus/parser # the same input format
    if [ ! -f "$src" ]; then
        echo "fuzz_$t: no such target ($src)"
        failed=$((failed + 1))
        continue
    fi
    if ! $CLANG $FLAGS "$src" $(ls tests/fuzz/fuzz_"$t"_*.c 2>/dev/null) -o "$bin" -lpthread -lm; then
        echo "fuzz_$t: build failed"
        failed=$((failed + 1))
        continue
    fi
    mkdir -p "$work" "$artifacts" "$seeds" "$regress"
    ok=1
    if [ "$mode" = smoke ]; then
        # Every seed and regression input, each run once.
        mapfile -t inputs < <(find "$seeds" "$regress" -type f | sort)
        if [ ${#inputs[@]} -gt 0 ] &&
            ! "$bin" -artifact_prefix="$artifacts" "${inputs[@]}" >"build/fuzz/$t.replay.log" 2>&1; then
            echo "fuzz_$t: a corpus or regression input fails; see build/fuzz/$t.replay.log"
            grep -m3 -A2 'invariant failed\|ERROR:' "build/fuzz/$t.replay.log"
            ok=0
        fi
    fi
    if [ "$ok" = 1 ] && [ "$seconds" -gt 0 ]; then
        log=build/fuzz/$t.log
        started=$(date +%s)
        if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$artifacts" "${dict[@]}" "$work" "$seeds" "$regress" >"$log" 2>&1; then
            echo "fuzz_$t: FAILED; input in $artifacts, log $log"
            grep -m3 -A2 'invariant failed\|ERROR:' "$log"
            ok=0
        fi
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        echo "fuzz_$t: ${runs:-?} runs in $(($(date +%s) - started)) s"
    fi
    if [ "$ok" = 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
