"""Socket-level test harness for turbo servers: start/stop a server binary,
speak raw bytes to it, parse its responses strictly. Python 3 stdlib only."""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

LISTEN_RE = re.compile(r"turbo: listening on http://(\S+):(\d+) \(([^)]*threads?)\)")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer")
TCHAR = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def wait_until(cond, msg, timeout=10.0):
    """Polls cond until it holds (a test waits for a condition, never a fixed time)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TestFailure(msg)
        time.sleep(0.01)


def short(data, limit=120):
    """Printable excerpt of bytes for failure messages."""
    text = repr(bytes(data[:limit]))
    return text + ("...(%d bytes)" % len(data) if len(data) > limit else "")


# ---------------------------------------------------------------- server

def written(f):
    """What a child has written to f, its stdout and stderr. Read at an offset (pread): the
    file's offset is shared with the child, so a seek here would make its next write land
    over what it wrote before."""
    return os.pread(f.fileno(), os.fstat(f.fileno()).st_size, 0)


class Process:
    """A server process, C or Python: its output (stdout and stderr) goes to a file, so
    that no pipe ever fills and what it wrote before answering is there when the answer
    is; its port is read from the listening line, or given (a peer such as uvicorn) and
    then waited for until it accepts."""

    def __init__(self, argv, env, cwd=None, port=None, startup_timeout=15.0):
        self.env = env
        self.output = tempfile.TemporaryFile()
        self.host = None
        self.port = port
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self.output, stderr=self.output)
        deadline = time.monotonic() + startup_timeout
        while not self._ready(port is not None):
            if self.proc.poll() is not None:
                raise RuntimeError("server exited (status %s) before it listened; output: %s"
                                   % (self.proc.returncode, self.stderr()[-2000:]))
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("server not listening within %.0fs; output: %s"
                                   % (startup_timeout, self.stderr()[-2000:]))
            time.sleep(0.05)

    def _ready(self, given_port):
        if given_port:
            return self._accepts()
        m = LISTEN_RE.search(self.stderr())
        if m:
            self.host, self.port = m.group(1), int(m.group(2))
        return m is not None

    def _accepts(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stderr(self):
        """Everything the server has printed so far."""
        return written(self.output).decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig=signal.SIGTERM):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit status, or None if still running after timeout seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


class Server(Process):
    """A C server binary, configured by its environment (PORT=0, TURBO_THREADS=2 unless env
    says otherwise; a variable set to None is unset), run under wrap (e.g. taskset) if given."""

    def __init__(self, binary, env=None, startup_timeout=15.0, wrap=()):
        full_env = dict(os.environ)
        full_env.update({"PORT": "0", "TURBO_THREADS": "2"})
        full_env.update(env or {})
        full_env = {k: v for k, v in full_env.items() if v is not None}
        Process.__init__(self, [*wrap, binary], full_env, startup_timeout=startup_timeout)

    def stop(self, timeout=5.0):
        """SIGTERM, then wait. Returns a failure message or None."""
        if not self.alive():
            rc = self.proc.returncode
            return "server had already exited with status %s before SIGTERM%s" % (
                rc, sanitizer_excerpt(self.stderr()))
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            return "server still running %.0fs after SIGTERM (killed)" % timeout
        return exit_problem(rc, self.stderr())


NGINX_CONF = """daemon off;
master_process off;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{http}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx(http, port):
    """Debian's nginx in the foreground, in a folder of its own, serving the given contents of
    its http block on port (waited for until it accepts). None when nginx is not installed."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not binary:
        return None
    prefix = tempfile.mkdtemp(prefix="turbo-nginx-")
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(prefix=prefix, http=http))
    server = Process([binary, "-p", prefix, "-e", os.path.join(prefix, "error.log"), "-c",
                      os.path.join(prefix, "nginx.conf")], dict(os.environ), port=port)
    server.prefix = prefix  # for the caller to remove
    return server


def process_gone(pid):
    """The process has exited (a zombie counts: its parent may be gone, as an old generation's
    is after a restart)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def sanitizer_excerpt(text):
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            return "; sanitizer report: " + text[i:i + 400].replace("\n", " | ")
    return ""


def exit_problem(rc, stderr_text):
    rep = sanitizer_excerpt(stderr_text)
    if rc != 0:
        return "exit status %s (want 0)%s" % (rc, rep)
    if rep:
        return "exit 0 but" + rep
    return None


# ---------------------------------------------------------------- responses

class Response:
    def __init__(self, version, status, reason, headers, body, raw, framing):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value) as str, in order
        self.body = body                # bytes, de-chunked
        self.raw = raw                  # the exact bytes of this response
        self.framing = framing          # "none", "length", "chunked", "close"

    def header(self, name):
        """The single value of a header (None if absent); joins repeats with ', '."""
        vals = self.all(name)
        return ", ".join(vals) if vals else None

    def all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def tokens(self, name):
        """Comma-separated list members of a header, lower-cased."""
        out = []
        for v in self.all(name):
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def __repr__(self):
        return "<%s %d, %d body bytes>" % (self.version, self.status, len(self.body))


class BadResponse(Exception):
    pass


def parse_response(buf, method="GET", eof=False):
    """Parse one response from the start of buf. Returns (Response, consumed) or
    None when more bytes are needed. Raises BadResponse on malformed bytes."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise BadResponse("no end of response head in %d bytes" % len(buf))
        if eof and buf:
            raise BadResponse("connection closed inside response head: " + short(buf))
        return None
    head = bytes(buf[:end])
    lines = head.split(b"\r\n")
    m = re.match(rb"^(HTTP/\d\.\d) (\d{3}) ([^\r\n]*)$", lines[0])
    if not m:
        raise BadResponse("bad status line " + short(lines[0]))
    version, status, reason = m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1")
    headers = []
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0 or any(c not in TCHAR for c in line[:colon]):
            raise BadResponse("bad response header line " + short(line))
        value = line[colon + 1:].strip(b" \t")
        if any(c < 0x20 and c != 0x09 or c == 0x7f for c in value):
            raise BadResponse("control byte in response header " + short(line))
        headers.append((line[:colon].decode(), value.decode("latin-1")))
    pos = end + 4
    lower = [(k.lower(), v) for k, v in headers]
    cls = [v for k, v in lower if k == "content-length"]
    tes = [v for k, v in lower if k == "transfer-encoding"]
    if len(cls) > 1:
        raise BadResponse("response has %d Content-Length headers" % len(cls))
    if cls and tes:
        raise BadResponse("response has both Content-Length and Transfer-Encoding")
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        return Response(version, status, reason, headers, b"", bytes(buf[:pos]), "none"), pos
    if tes:
        if tes[-1].lower().split(",")[-1].strip() != "chunked":
            raise BadResponse("response Transfer-Encoding %r not understood" % tes)
        body = bytearray()
        p = pos
        while True:
            le = buf.find(b"\r\n", p)
            if le < 0:
                if eof:
                    raise BadResponse("closed inside chunked response")
                return None
            size_txt = bytes(buf[p:le]).split(b";")[0].strip()
            if not re.match(rb"^[0-9A-Fa-f]+$", size_txt):
                raise BadResponse("bad chunk size in response " + short(size_txt))
            size = int(size_txt, 16)
            p = le + 2
            if size == 0:
                while True:  # trailer section up to the empty line
                    le = buf.find(b"\r\n", p)
                    if le < 0:
                        if eof:
                            raise BadResponse("closed inside response trailers")
                        return None
                    if le == p:
                        p += 2
                        return Response(version, status, reason, headers, bytes(body),
                                        bytes(buf[:p]), "chunked"), p
                    p = le + 2
            if len(buf) < p + size + 2:
                if eof:
                    raise BadResponse("closed inside response chunk")
                return None
            body += buf[p:p + size]
            if buf[p + size:p + size + 2] != b"\r\n":
                raise BadResponse("response chunk not followed by CRLF")
            p += size + 2
    if cls:
        if not re.match(r"^[0-9]+$", cls[0]):
            raise BadResponse("bad response Content-Length %r" % cls[0])
        n = int(cls[0])
        if len(buf) < pos + n:
            if eof:
                raise BadResponse("closed after %d of %d body bytes" % (len(buf) - pos, n))
            return None
        return Response(version, status, reason, headers, bytes(buf[pos:pos + n]),
                        bytes(buf[:pos + n]), "length"), pos + n
    if not eof:
        return None
    return Response(version, status, reason, headers, bytes(buf[pos:]), bytes(buf), "close"), len(buf)


# ---------------------------------------------------------------- connections

class Conn:
    """A blocking client socket with a read buffer and strict response reading."""

    # The default waits are for answers that come at once: long enough for a loaded machine
    # and a sanitizer build, as they cost nothing unless the answer never comes.
    def __init__(self, port, host="127.0.0.1", timeout=10.0, rcvbuf=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_trickle(self, data, delay):
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if delay:
                time.sleep(delay)

    def _fill(self, deadline):
        """Read once into buf. Returns False on timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self.eof = self.reset = True
            return True
        except socket.timeout:
            return False
        if not data:
            self.eof = True
        self.buf += data
        return True

    def read_response(self, method="GET", timeout=None):
        limit = timeout if timeout is not None else self.timeout
        deadline = time.monotonic() + limit
        while True:
            got = parse_response(self.buf, method, self.eof)
            if got:
                resp, used = got
                del self.buf[:used]
                return resp
            if self.eof:
                raise TestFailure("connection %s before a response%s" % (
                    "reset" if self.reset else "closed",
                    " (got %s)" % short(self.buf) if self.buf else " (no bytes)"))
            if not self._fill(deadline):
                raise TestFailure("no complete response within %.1fs%s" % (
                    limit,
                    " (partial: %s)" % short(self.buf) if self.buf else " (no bytes)"))

    def read_responses(self, n, method="GET", timeout=None):
        return [self.read_response(method if isinstance(method, str) else method[i], timeout)
                for i in range(n)]

    def wait_closed(self, timeout=10.0):
        """None if the peer closes (FIN or RST) within timeout with no further
        bytes; otherwise a description of what happened instead."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._fill(deadline):
                break
        if self.buf:
            return "unexpected bytes after the response: " + short(self.buf)
        if not self.eof:
            return "connection still open %.1fs after the response" % timeout
        return None

    def closed_within(self, timeout):
        """Seconds until the peer closed, or None if it did not within timeout.
        Bytes received meanwhile stay in buf."""
        start = time.monotonic()
        deadline = start + timeout
        while not self.eof:
            if not self._fill(deadline):
                return None
        return time.monotonic() - start

    def quiet_for(self, seconds):
        """True if nothing arrives (and no close) for the given time."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.buf or self.eof:
                return False
            self._fill(deadline)
        return not self.buf and not self.eof


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False
