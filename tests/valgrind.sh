#!/usr/bin/env bash
# The socket suite (tests/test_http.py, or the tests named by substrings)
# against the demo server running under valgrind memcheck: any invalid access, use of
# uninitialised memory, or definite/indirect leak fails it.
#
#   tests/valgrind.sh [SERVER_BINARY] [name-substring ...]
#
# Without a binary it builds build/valgrind/hello from examples/hello.c at
# -O1 -g without sanitizers. Every server process (forked ones too) writes
# build/valgrind/vg.<pid>.log; a test_http.py failure, a server exit status
# of 99 (valgrind's, for errors), or an error summary other than 0 in any
# log fails the run. Prints "N passed, N failed" (the suite's, plus one
# check per valgrind log) and exits non-zero on failure.
set -u
cd "$(dirname "$0")/.."

dir=build/valgrind
mkdir -p "$dir"
rm -f "$dir"/vg.*.log
if [ $# -gt 0 ] && [ -x "$1" ]; then
    bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    shift
else
    bin=$PWD/$dir/hello
    ${CC:-cc} -std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -g examples/hello.c -o "$bin" -lpthread || {
        echo "build failed"
        echo "0 passed, 1 failed"
        exit 1
    }
fi
command -v valgrind >/dev/null || {
    echo "valgrind not installed (Debian: apt-get install valgrind)"
    echo "0 passed, 1 failed"
    exit 1
}

# No substrings: the whole suite (about 30 s under valgrind on 2 cores).
wrapper=$dir/hello-under-valgrind
cat >"$wrapper" <<EOF
#!/bin/sh
exec valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \\
    --error-exitcode=99 --log-file="$PWD/$dir/vg.%p.log" "$bin" "\$@"
EOF
chmod +x "$wrapper"

out=$dir/test_http.log
started=$(date +%s)
${PYTHON:-python3} tests/test_http.py "$wrapper" "$@" >"$out" 2>&1
suite_rc=$?
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
passed=${summary%% passed*}
failed=${summary#*, }
failed=${failed%% failed*}
[ -z "$summary" ] && passed=0 failed=1
[ "$suite_rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
grep '^FAIL' "$out"

logs=0
for log in "$dir"/vg.*.log; do
    [ -e "$log" ] || continue
    logs=$((logs + 1))
    # Counts invalid accesses, uninitialised values and definite/indirect
    # leaks ("possibly lost" thread stacks after a deliberate _exit are not).
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
    if [ "${errors:-x}" != 0 ]; then
        if [ -z "$errors" ]; then
            echo "FAIL valgrind in $log: no ERROR SUMMARY (was the server killed?)"
        else
            echo "FAIL valgrind in $log: $errors errors"
        fi
        grep -A12 'Invalid\|uninitialised\|definitely lost in\|indirectly lost in' "$log" | head -40
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
done
if [ "$logs" -eq 0 ]; then
    echo "FAIL no valgrind log: did the server run under valgrind?"
    failed=$((failed + 1))
fi
echo "# $logs server processes under valgrind, $(($(date +%s) - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
