"""turbo.h compiles warning-free as C99 and C11 with gcc and clang, as C++17
with g++ and clang++, with TURBO_STATIC and with TURBO_NO_SIMD: each build is one test.
A program of two files links, the other file calling the answer-writing API
that the file with TURBO_IMPL gets inline (TB__API_INLINE), each way it is built.

Run: python3 tests/test_compile.py [-k WORD...] (only the builds whose command has a word)"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRICT = ["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only"]
BUILDS = [
    ("gcc", ["-std=c99"]), ("gcc", ["-std=c11"]), ("clang", ["-std=c99"]), ("clang", ["-std=c11"]),
    ("g++", ["-std=c++17", "-x", "c++"]), ("clang++", ["-std=c++17", "-x", "c++"]),
    ("gcc", ["-std=c99", "-DTURBO_STATIC"]), ("g++", ["-std=c++17", "-x", "c++", "-DTURBO_STATIC"]),
    ("clang", ["-std=c99", "-DTURBO_NO_SIMD"]),
]
SOURCES = ["examples/hello.c", "tests/c_api_server.c"]
C_ONLY = {"examples/hello.c"}  # its `turbo_config cfg = {0}` is C's way to zero a struct
# A file that includes the header twice, once for the API and once for the
# implementation: it needs -D_GNU_SOURCE, as turbo.h's #error says.
DOUBLE = '#include "turbo.h"\n#define TURBO_IMPL\n#include "turbo.h"\nint main(void) { return 0; }\n'
# Two files: the implementation and a handler, and another file's handler.
IMPL = """#define TURBO_IMPL
#include "turbo.h"
void other(turbo_res *res);
static void here(turbo_req *req, turbo_res *res, void *user) {
    turbo_json *j = turbo_res_json(res, 200);
    (void)req, (void)user;
    turbo_json_object_begin(j), turbo_json_key(j, "a"), turbo_json_string(j, "b"), turbo_json_object_end(j);
}
static void there(turbo_req *req, turbo_res *res, void *user) { (void)req, (void)user, other(res); }
int main(void) {
    turbo_server *s = turbo_new(NULL);
    int rc = s && (turbo_get(s, "/", here, NULL) || turbo_get(s, "/other", there, NULL));
    turbo_free(s);
    return rc;
}
"""
OTHER = """#include "turbo.h"
void other(turbo_res *res) {
    turbo_json *j = turbo_res_json(res, 200);
    turbo_json_array_begin(j), turbo_json_stringn(j, "b", 1), turbo_json_array_end(j);
    turbo_json_keyn(j, "k", 1), turbo_res_text(res, 200, "t");
}
"""
LINKS = [("gcc", []), ("gcc", ["-fgnu89-inline"]), ("clang", []), ("g++", ["-x", "c++"])]


def builds(cmd):
    """Does the compiler command cmd succeed? If not, says how it failed."""
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        print("FAIL %s\n%s" % (" ".join(cmd), proc.stdout.decode()[:2000]))
    return proc.returncode == 0


def main(argv):
    words = argv[argv.index("-k") + 1:] if "-k" in argv else []
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        double = os.path.join(tmp, "double.c")
        with open(double, "w") as f:
            f.write(DOUBLE)
        for cc, flags in BUILDS:
            if not shutil.which(cc):
                print("FAIL %s is not installed" % cc)
                failed += 1
                continue
            for src in SOURCES + [double]:
                extra = ["-D_GNU_SOURCE"] if src == double else []
                cmd = [cc] + flags + extra + STRICT + ["-I", ROOT, src]
                if (src in C_ONLY and "c++" in flags) or (words and not any(w in " ".join(cmd) for w in words)):
                    continue
                ok = builds(cmd)
                passed, failed = passed + ok, failed + (not ok)
        impl, other = os.path.join(tmp, "impl.c"), os.path.join(tmp, "other.c")
        for path, text in ((impl, IMPL), (other, OTHER)):
            with open(path, "w") as f:
                f.write(text)
        for cc, flags in LINKS:
            cmd = [cc, "-std=c++17" if "c++" in flags else "-std=c99", "-O2"] + flags + STRICT[:-1] + \
                ["-I", ROOT, impl, other, "-o", os.path.join(tmp, "two"), "-lpthread"]
            if words and not any(w in " ".join(cmd) for w in words):
                continue
            ok = builds(cmd)
            passed, failed = passed + ok, failed + (not ok)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
