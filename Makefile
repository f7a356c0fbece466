# turbo: `make` builds everything, `make run` starts the demo, `make test`
# runs every test and ends with "N passed, N failed", `make bench` measures.
CC      ?= cc
PYTHON  ?= python3
WARN    := -std=c99 -Wall -Wextra -Wpedantic -Werror
OPT     := -O2 -g
ASAN    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
TSAN    := -O1 -g -fsanitize=thread
LDLIBS  := -lpthread
HDRS    := turbo.h

# The Python extension is built in place, into the turbo/ package, so `import turbo` works from here.
PY_INC  := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PY_EXT  := turbo/_turbo$(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')

PROGRAMS := build/hello build/hello-asan build/hello-tsan build/hello-debug build/hello-kqueue build/test_shim \
            build/test_parser build/test_parser-portable build/test_json build/test_json-portable \
            build/native_server build/c_api_server-asan build/c_api_server-tsan \
            build/ws_server-asan build/ws_server-tsan \
            $(PY_EXT) examples/handlers.so
.PHONY: all run test bench bench-quick fuzz valgrind format clean compile_commands.json

all: $(PROGRAMS)

build/hello: examples/hello.c $(HDRS) | build
	$(CC) $(WARN) $(OPT) $< -o $@ $(LDLIBS)
build/hello-asan: examples/hello.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) $< -o $@ $(LDLIBS)
build/hello-tsan: examples/hello.c $(HDRS) | build
	$(CC) $(WARN) $(TSAN) $< -o $@ $(LDLIBS)
build/hello-debug: examples/hello.c $(HDRS) | build
	$(CC) $(WARN) -O1 -g $< -o $@ $(LDLIBS)
# The BSD build, on a shim; with the head scans that need no SSE2, as on ARM.
build/hello-kqueue: examples/hello.c tests/kqueue_shim/kqueue.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) -DTURBO_KQUEUE -DTURBO_SHARED_LISTENER -DTURBO_NO_SIMD -Itests/kqueue_shim examples/hello.c tests/kqueue_shim/kqueue.c -o $@ $(LDLIBS)
build/test_shim: tests/kqueue_shim/test_shim.c tests/kqueue_shim/kqueue.c | build
	$(CC) $(WARN) $(ASAN) -Itests/kqueue_shim $^ -o $@ $(LDLIBS)
build/test_parser: tests/test_parser.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) $< -o $@ $(LDLIBS)
build/test_parser-portable: tests/test_parser.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) -DTURBO_NO_SIMD $< -o $@ $(LDLIBS)
build/test_json: tests/test_json.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) $< -o $@ $(LDLIBS)
build/test_json-portable: tests/test_json.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) -DTURBO_NO_SIMD $< -o $@ $(LDLIBS)
build/c_api_server-asan: tests/c_api_server.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) $< -o $@ $(LDLIBS)
build/c_api_server-tsan: tests/c_api_server.c $(HDRS) | build
	$(CC) $(WARN) $(TSAN) $< -o $@ $(LDLIBS)
build/ws_server-asan: tests/ws_server.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) $< -o $@ $(LDLIBS)
build/ws_server-tsan: tests/ws_server.c $(HDRS) | build
	$(CC) $(WARN) $(TSAN) $< -o $@ $(LDLIBS)
build/native_server: examples/native_server.c examples/handlers.c $(HDRS) | build
	$(CC) $(WARN) $(OPT) -I. examples/native_server.c examples/handlers.c -o $@ $(LDLIBS)
build/json_bench: bench/json_bench.c $(HDRS) | build
	$(CC) $(WARN) -O2 $< -o $@ $(LDLIBS) -lcjson
build/floor: bench/floor.c | build
	$(CC) $(WARN) -O2 $< -o $@
# The module's own calls to turbo_* bind to it (they can be inlined), and its
# calls into libpython skip the PLT: -90 instructions on a GET /json. -O3: the
# same instructions a request, but the JSON decoder 3% quicker and the encoder
# 2% (README, "The JSON writer").
$(PY_EXT): turbo_py.c $(HDRS)
	$(CC) -O3 -g -fPIC -fno-semantic-interposition -fno-plt -shared -Wall -Wextra -Werror -I$(PY_INC) $< -o $@ $(LDLIBS)
examples/handlers.so: examples/handlers.c $(HDRS)
	$(CC) $(WARN) -O2 -fPIC -shared -I. $< -o $@
build:
	mkdir -p build

run: build/hello
	./build/hello

# make test T="http json": only the suites whose name has one of the words
test: all
	$(PYTHON) tests/run_all.py $(T)

# run.py installs the peers (libcjson-dev among them) before json_bench is built.
bench: all build/floor
	$(PYTHON) bench/run.py
	$(PYTHON) bench/blocking.py
	$(PYTHON) bench/ws.py
	$(MAKE) build/json_bench
	./build/json_bench

bench-quick: all build/floor
	$(PYTHON) bench/run.py --quick
	$(PYTHON) bench/blocking.py --quick

fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} bash tests/fuzz/run.sh

valgrind: build/hello-debug
	bash tests/valgrind.sh

# Every C file in the style of .clang-format (clang-format 14 or later).
CLANG_FORMAT ?= clang-format
FORMAT_FILES := turbo.h turbo_py.c $(wildcard examples/*.c tests/*.c tests/kqueue_shim/*.c tests/kqueue_shim/sys/*.h \
                tests/fuzz/*.c tests/fuzz/*.h bench/*.c)
format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

# For editors (clangd): the implementation half of turbo.h compiles as part of examples/hello.c.
compile_commands.json:
	printf '[{"directory":"%s","file":"examples/hello.c","command":"cc $(WARN) -c examples/hello.c"},{"directory":"%s","file":"turbo_py.c","command":"cc -Wall -Wextra -I$(PY_INC) -c turbo_py.c"}]\n' "$(CURDIR)" "$(CURDIR)" > $@

clean:
	rm -rf build $(PY_EXT) examples/handlers.so
