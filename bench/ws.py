#!/usr/bin/env python3
"""bench/ws.py: WebSockets, turbo against node's ws and Python's websockets.

    python3 bench/ws.py            3 interleaved repetitions of 5 s (under 2 minutes)
    python3 bench/ws.py --quick    one repetition of 2 s (under a minute)

Three echo servers, one process each, pinned to CPU 0: bench/peers/ws_turbo.c (one
event loop), bench/peers/ws_node.js (the ws package) and bench/peers/ws_python.py
(websockets on asyncio). bench/ws_load.c, pinned to CPU 1, drives 64 WebSockets, each
sending a 32-byte masked text message and waiting for its echo (checked byte for byte)
before the next. Reported per server: messages/s, the server's CPU time per message
(utime + stime from /proc), its ratio to node's; then the RSS each of 10,000 idle
WebSockets adds. Writes bench/results/ws.{json,md}. Uses bench/run.py's helpers;
method: bench/README.md.
"""
import argparse
import json
import os
import re
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

LOAD = os.path.join(bench.BUILD, "ws_load")
WS_TURBO = os.path.join(bench.BUILD, "ws_turbo")
BROWSER = os.path.join(bench.ROOT, "tests", "browser")  # its package.json lists ws
NODE_WS = os.path.join(BROWSER, "node_modules", "ws")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-websockets
CONNECTIONS = 64
MESSAGE_BYTES = 32
IDLE = 10000
TARGET_CPU = 0.5  # turbo's CPU per message over node's
TARGET_IDLE_KIB = 2.0
log = bench.log


# ------------------------------------------------------------ setup

def build():
    """build/ws_load and build/ws_turbo, when older than what they are made of."""
    cc = os.environ.get("CC", "cc")
    flags = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-O2", "-g"]
    made = [(LOAD, ["bench/ws_load.c"], []),
            (WS_TURBO, ["bench/peers/ws_turbo.c", "turbo.h"], ["-lpthread"])]
    os.makedirs(bench.BUILD, exist_ok=True)
    for out, sources, libs in made:
        paths = [os.path.join(bench.ROOT, s) for s in sources]
        if os.path.exists(out) and all(os.path.getmtime(out) >= os.path.getmtime(p) for p in paths):
            continue
        built = subprocess.run([cc, *flags, "-o", out, paths[0], *libs], capture_output=True,
                               text=True)
        if built.returncode != 0:
            sys.exit(f"bench/ws.py: building {sources[0]} failed:\n{built.stderr}")


def install_missing():
    """The peers' packages, when missing: ws from tests/browser/package.json (npm), and
    python3-websockets (apt-get, when root)."""
    if not os.path.isdir(NODE_WS) and shutil.which("npm"):
        log("installing tests/browser's npm packages (ws)")
        subprocess.run(["npm", "install", "--prefix", BROWSER, "--no-audit", "--no-fund"],
                       capture_output=True)
    if bench.python_with(["websockets"], [PYTHON]) or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    log("installing: python3-websockets")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq", "python3-websockets"], env=env)


def define_servers():
    node_ws = bench.need_file(NODE_WS, "npm install --prefix tests/browser")
    return [
        bench.Server("turbo", "turbo (ws_turbo.c, one loop)", lambda port, _: [WS_TURBO], set(),
                     env={"TURBO_THREADS": "1", "TURBO_PROCESSES": "1"},
                     idle_env={"TURBO_MAX_CONNECTIONS": str(2 * IDLE)},
                     missing=bench.need_file(WS_TURBO, "cc failed")),
        bench.Server("node", "node + ws",
                     lambda port, _: ["node", os.path.join(bench.PEERS, "ws_node.js")], set(),
                     missing=bench.need_all(bench.need_program("node"), node_ws)),
        bench.Server("python", "Python websockets (asyncio)",
                     lambda port, _: [PYTHON, os.path.join(bench.PEERS, "ws_python.py")], set(),
                     missing=lambda: None if bench.python_with(["websockets"], [PYTHON])
                     else f"{PYTHON} has no websockets (apt-get install python3-websockets)"),
    ]


def versions():
    out = bench.module_versions(PYTHON, ["websockets"])
    try:
        with open(os.path.join(NODE_WS, "package.json")) as f:
            out["ws"] = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        pass
    out["node"] = bench.command_output(["node", "--version"])
    out["cc"] = bench.command_output([os.environ.get("CC", "cc"), "--version"])
    return out


# ------------------------------------------------------------ measuring

def load_argv(port, *args):
    return ["taskset", "-c", bench.CLIENT_CPU, LOAD, str(port), *map(str, args)]


def run_load(running, seconds, depth):
    """One ws_load echo run: its counts, the server's CPU time over it (handshakes and
    closes included: 64 of each), and how busy each core was."""
    running.refresh_pids()
    pids = running.pids
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, core0 = bench.cpu_ticks(pids), bench.cpu_line(bench.SERVER_CPU)
    argv = load_argv(running.port, "-c", CONNECTIONS, "-d", seconds, "-s", MESSAGE_BYTES,
                     "-p", depth)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    cpu1, core1 = bench.cpu_ticks(pids), bench.cpu_line(bench.SERVER_CPU)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"^BENCH (\{.*\})$", done.stdout, re.M)
    if not match:
        raise RuntimeError(f"ws_load printed no result: {(done.stdout + done.stderr)[-400:]}")
    got = json.loads(match.group(1))
    cpu_s = (cpu1 - cpu0) / bench.CLK_TCK
    client_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "messages": got["messages"], "seconds": got["seconds"], "rate": got["rate"],
        "errors": got["errors"], "lost": got["lost"], "first_error": got["first_error"],
        "server_cpu_s": cpu_s,
        "cpu_us_per_msg": cpu_s * 1e6 / got["messages"] if got["messages"] else None,
        "server_cpu_util": cpu_s / got["seconds"],
        "load_cpu_util": client_s / got["seconds"],
        "core_other_util": ((core1[0] - core0[0]) - (cpu1 - cpu0)) / max(1, core1[1] - core0[1]),
    }


def start(server, scratch, idle=False):
    """(a started server, None), or (None, why not)."""
    reason = server.missing()
    if reason:
        return None, "not available: " + reason
    running = server.start(scratch, idle=idle)
    problem = running.wait_ready(server.ready_timeout)
    if problem:
        running.stop()
        return None, "failed to start: " + problem
    return running, None


def measure_echo(servers, settings, scratch, results):
    """Every server started once; a warm-up run each, then the repetitions interleaved
    (A B C A B C)."""
    running = {}
    try:
        for server in servers:
            started, problem = start(server, scratch)
            if problem:
                results["unavailable"][server.name] = problem
                log(f"  {server.name}: {problem}")
            else:
                running[server.name] = started
        for rep in [None] + list(range(settings["reps"])):
            for server in servers:
                if server.name not in running:
                    continue
                seconds = settings["warmup"] if rep is None else settings["duration"]
                try:
                    run = run_load(running[server.name], seconds, settings["depth"])
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    run = {"error": str(err)}
                if running[server.name].proc.poll() is not None:
                    run = {"error": "server died: " + running[server.name].log_tail()}
                if "error" in run:
                    results["unavailable"][server.name] = run["error"]
                    log(f"  {server.name}: {run['error']}")
                    running.pop(server.name).stop()
                    continue
                results["runs"].append({"server": server.name, "warmup": rep is None,
                                        **({} if rep is None else {"rep": rep + 1}), **run})
                if rep is not None:
                    log(f"  {server.name:<7} rep {rep + 1}/{settings['reps']}  {run['rate']:>9,.0f} "
                        f"messages/s  {run['cpu_us_per_msg'] or float('nan'):6.2f} us CPU/message  "
                        f"errors {run['errors']} lost {run['lost']}  server {run['server_cpu_util']:.0%}"
                        f" ws_load {run['load_cpu_util']:.0%} others on CPU {bench.SERVER_CPU} "
                        f"{run['core_other_util']:.0%}" + (f"  ({run['first_error']})"
                                                           if run["first_error"] else ""))
    finally:
        for started in running.values():
            started.stop()


def read_line(proc, timeout):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"ws_load said nothing in {timeout:.0f} s")
    line = proc.stdout.readline().strip()
    if not line:
        raise RuntimeError(f"ws_load ended: {proc.stderr.read()[-400:]}")
    return line


def measure_idle(server, count, scratch, results):
    """A fresh server, its RSS after one echo, then with count idle WebSockets held
    (kernel socket buffers are in no one's RSS)."""
    running, problem = start(server, scratch, idle=True)
    if problem:
        results["idle"][server.name] = {"error": problem}
        log(f"  idle {server.name:<7} {problem}")
        return
    holder = None
    try:
        first = subprocess.run(load_argv(running.port, "-c", 1, "-d", 0.2), capture_output=True,
                               text=True, timeout=60)
        if first.returncode != 0:
            raise RuntimeError(f"the first echo failed: {(first.stdout + first.stderr)[-300:]}")
        time.sleep(0.5)
        running.refresh_pids()
        base_kb = bench.rss_kb(running.pids)
        t0 = time.monotonic()
        holder = subprocess.Popen(load_argv(running.port, "-i", count), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        read_line(holder, 180)  # "ready N"
        opened_s = time.monotonic() - t0
        time.sleep(1.0)  # what the server does with them once open is in the figure
        running.refresh_pids()
        held_kb = bench.rss_kb(running.pids)
        holder.stdin.write("\n")
        holder.stdin.flush()
        still_open = int(read_line(holder, 30).split()[1])  # "open N"
        row = {"connections": count, "open": still_open, "baseline_kb": base_kb,
               "held_kb": held_kb, "seconds_to_open": round(opened_s, 2)}
        if still_open >= 0.9 * count:
            row["kib_per_conn"] = (held_kb - base_kb) / still_open
        else:
            row["error"] = f"{count - still_open} of {count} not open"
    except (RuntimeError, OSError, ValueError, IndexError, subprocess.TimeoutExpired) as err:
        row = {"error": str(err)}
    finally:
        if holder:
            holder.stdin.close()
            try:
                holder.wait(30)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait()
        running.stop()
    results["idle"][server.name] = row
    log(f"  idle {server.name:<7} " + (
        f"open {row['open']:,}/{count:,}  RSS {row['baseline_kb'] / 1024:.1f} -> "
        f"{row['held_kb'] / 1024:.1f} MiB  {row['kib_per_conn']:.2f} KiB each"
        if "kib_per_conn" in row else row["error"]))


# ------------------------------------------------------------ reporting

def summarize(results):
    out = {}
    for server in [s["name"] for s in results["servers"]]:
        runs = [r for r in results["runs"] if r["server"] == server and not r["warmup"]]
        if not runs:
            continue
        rates = [r["rate"] for r in runs]
        cpu = [r["cpu_us_per_msg"] for r in runs if r["cpu_us_per_msg"]]
        out[server] = {
            "rate_median": statistics.median(rates), "rate_min": min(rates), "rate_max": max(rates),
            "cpu_us_per_msg": statistics.median(cpu) if cpu else None,
            "server_cpu_util": statistics.median(r["server_cpu_util"] for r in runs),
            "load_cpu_util": statistics.median(r["load_cpu_util"] for r in runs),
            "errors": sum(r["errors"] + r["lost"] for r in runs), "runs": len(runs),
        }
    node = (out.get("node") or {}).get("cpu_us_per_msg")
    for row in out.values():
        row["cpu_vs_node"] = row["cpu_us_per_msg"] / node if node and row["cpu_us_per_msg"] else None
    return out


def targets(results):
    rows = []
    ratio = (results["summary"].get("turbo") or {}).get("cpu_vs_node")
    if ratio:
        rows.append((f"turbo CPU per message <= {TARGET_CPU}x node's", f"{ratio:.2f}x",
                     ratio <= TARGET_CPU))
    idle = (results["idle"].get("turbo") or {}).get("kib_per_conn")
    if idle is not None:
        rows.append((f"turbo RSS per idle WebSocket <= {TARGET_IDLE_KIB:g} KiB", f"{idle:.2f} KiB",
                     idle <= TARGET_IDLE_KIB))
    return rows


def markdown(results):
    s, names = results["settings"], {x["name"]: x["label"] for x in results["servers"]}
    m = results["machine"]
    lines = [f"# turbo WebSockets ({results['date']})", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; turbo {m['turbo_commit']}.",
             "", f"## WebSocket echo: {CONNECTIONS} connections, {MESSAGE_BYTES}-byte text messages, "
             f"{s['depth']} in flight each", "",
             *bench.noise_note(results),
             "| server | messages/s median [min-max] | server CPU µs/message | CPU/message vs node "
             "| server CPU / ws_load CPU | errors |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in results["summary"].items():
        cpu = f"{row['cpu_us_per_msg']:.2f}" if row["cpu_us_per_msg"] else "-"
        ratio = f"{row['cpu_vs_node']:.2f}x" if row["cpu_vs_node"] else "-"
        lines.append(f"| {names[name]} | {row['rate_median']:,.0f} [{row['rate_min']:,.0f}-"
                     f"{row['rate_max']:,.0f}] | {cpu} | {ratio} | {row['server_cpu_util']:.0%} / "
                     f"{row['load_cpu_util']:.0%} | {row['errors']} |")
    for name, why in results["unavailable"].items():
        lines.append(f"| {names[name]} | {why} | | | | |")
    if results["idle"]:
        lines += ["", f"## {IDLE:,} idle WebSockets", "",
                  "A fresh server, RSS after one echo, then with the WebSockets open "
                  "(handshake done, nothing sent; kernel socket buffers are not in RSS).", "",
                  "| server | open | RSS before MiB | RSS held MiB | KiB per WebSocket |",
                  "|---|---:|---:|---:|---:|"]
        for name, row in results["idle"].items():
            if "kib_per_conn" not in row:
                lines.append(f"| {names[name]} | {row['error']} | | | |")
                continue
            lines.append(f"| {names[name]} | {row['open']:,} | {row['baseline_kb'] / 1024:.1f} | "
                         f"{row['held_kb'] / 1024:.1f} | {row['kib_per_conn']:.2f} |")
    goals = targets(results)
    if goals:
        lines += ["", "| target (issue #14) | measured | met |", "|---|---|---|"]
        lines += [f"| {what} | {value} | {'yes' if met else '**no**'} |" for what, value, met in goals]
    v = results["versions"]
    lines += ["", f"Median of {s['reps']} interleaved runs of {s['duration']} s (after a "
              f"{s['warmup']} s warm-up of each server); server pinned to CPU {bench.SERVER_CPU}, "
              f"`ws_load` to CPU {bench.CLIENT_CPU}. Server CPU is utime + stime of its processes "
              f"over a run (its {CONNECTIONS} handshakes and closes included) over the messages "
              "echoed. " + ", ".join(x for x in [
                  v.get("node") and "node " + v["node"], v.get("ws") and "ws " + v["ws"],
                  v.get("python") and "Python " + v["python"],
                  v.get("websockets") and "websockets " + v["websockets"], v.get("cc")] if x) + ".", ""]
    return "\n".join(lines)


# ------------------------------------------------------------ main

def main():
    bench.stop_all_on_exit()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition of 2 s")
    parser.add_argument("--reps", type=int, help="repetitions per server (3)")
    parser.add_argument("--duration", type=float, help="seconds per run (5)")
    parser.add_argument("--depth", type=int, default=1, help="messages in flight per connection")
    parser.add_argument("--servers", help="comma-separated: turbo,node,python (default: all)")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--out", default=bench.RESULTS, help="directory for ws.{json,md}")
    args = parser.parse_args()
    settings = {"reps": 1, "duration": 2, "warmup": 1} if args.quick else \
        {"reps": 3, "duration": 5, "warmup": 1}
    settings.update({k: v for k, v in (("reps", args.reps), ("duration", args.duration)) if v})
    settings["depth"] = args.depth
    bench.raise_nofile()
    build()
    install_missing()
    os.sched_setaffinity(0, {int(bench.CLIENT_CPU)})
    servers = define_servers()
    if args.servers:
        servers = [s for s in servers if s.name in args.servers.split(",")]
    results = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "settings": settings,
               "machine": bench.machine_info({"turbo": None, "fastapi": None, "flask": None}),
               "versions": versions(), "servers": [{"name": s.name, "label": s.label} for s in servers],
               "runs": [], "unavailable": {}, "idle": {}}
    scratch = tempfile.mkdtemp(prefix="turbo-ws-")
    try:
        log(f"WebSocket echo: {len(servers)} servers, {settings['reps']} x {settings['duration']} s")
        measure_echo(servers, settings, scratch, results)
        if not args.skip_idle:
            log(f"{IDLE:,} idle WebSockets:")
            for server in servers:
                measure_idle(server, IDLE, scratch, results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["summary"] = summarize(results)
    return bench.side_results(args.out, "ws", results, markdown(results))


if __name__ == "__main__":
    sys.exit(main())
