# turbo: `make` builds everything, `make run` starts the demo, `make test`
# runs every test and ends with "N passed, N failed".
CC      ?= cc
PYTHON  ?= python3
WARN    := -std=c99 -Wall -Wextra -Wpedantic -Werror
OPT     := -O2 -g
ASAN    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
TSAN    := -O1 -g -fsanitize=thread
LDLIBS  := -lpthread
HDRS    := turbo.h $(wildcard wip/*.h)

PROGRAMS := build/hello build/hello-asan build/hello-tsan build/test_parser
.PHONY: all run test clean

all: $(PROGRAMS)

build/hello: examples/hello.c $(HDRS) | build
	$(CC) $(WARN) $(OPT) $< -o $@ $(LDLIBS)
build/hello-asan: examples/hello.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) $< -o $@ $(LDLIBS)
build/hello-tsan: examples/hello.c $(HDRS) | build
	$(CC) $(WARN) $(TSAN) $< -o $@ $(LDLIBS)
build/test_parser: tests/test_parser.c $(HDRS) | build
	$(CC) $(WARN) $(ASAN) $< -o $@ $(LDLIBS)
build:
	mkdir -p build

run: build/hello
	./build/hello

test: all
	$(PYTHON) tests/run_all.py

clean:
	rm -rf build
