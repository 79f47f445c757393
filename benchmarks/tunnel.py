"""Tunnel throughput and connect latency: FlowNet against OpenSSH's `ssh -D`, with a direct baseline.

    .venv/bin/python benchmarks/tunnel.py [--size-mb 200] [--connects 200] [--only direct,ssh,flownet]
    .venv/bin/python benchmarks/tunnel.py --socks 1080    # measure an already-running SOCKS5 endpoint as "flownet"

What is measured, all on 127.0.0.1:

* Throughput. A local HTTP server (`python -m http.server`, in a subprocess) serves a file of random bytes;
  curl downloads it (a) directly, (b) through OpenSSH's dynamic SOCKS forwarding against a private sshd the
  benchmark starts and stops, and (c) through FlowNet (a provider serving the metered mutual-TLS tunnel and a
  client exposing it as a SOCKS5 proxy). Every download is checked against the source's sha256; each mode runs
  `--runs` times and the median MB/s (MB = 10^6 bytes) is the figure reported.
* Connect latency, for (b) and (c): over `--connects` sequential connections, a raw-socket SOCKS5 client
  greets the proxy, sends CONNECT to the HTTP server's IPv4 address and, once the proxy replies, a
  `GET /small` for a 1 KiB file; the time from sending CONNECT to the first byte of the HTTP response is
  recorded (p50/p90/p99 in ms). This is what a browser behind the proxy waits for on every new connection.

Why: FlowNet competes with "just use ssh -D". The target is FlowNet's throughput at least OpenSSH's
(`ratio` >= 1) and its connect p50 no worse than OpenSSH's. Both proxies run with their defaults (OpenSSH's
default cipher, which is printed). Loopback removes the network, so what remains is each tunnel's own cost:
encryption, framing, copies and scheduling.

The last line is machine-readable:

    flownet_mb_s=<a> ssh_mb_s=<b> direct_mb_s=<c> ratio=<a/b> connect_p50_ms=<x> ssh_connect_p50_ms=<y>

Missing figures (a mode skipped or unavailable) print as `nan`. `sshd` comes from Debian's openssh-server
(`apt-get install openssh-server`); curl, ssh and ssh-keygen from curl and openssh-client.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
MODES = ("direct", "ssh", "flownet")
BLOB = "blob.bin"
SMALL = "small"
SMALL_SIZE = 1024
CHUNK = 1 << 20
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
SOCK_TIMEOUT = 10.0
MAX_RESPONSE = 64 * 1024


class BenchError(Exception):
    """A failure worth a one-line message rather than a traceback."""


class MissingTool(BenchError):
    """A program the benchmark needs is not installed (exit status 2)."""


# ---------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(msg, flush=True)


def clean_env() -> dict[str, str]:
    """The environment without proxy variables, so `direct` really is direct and curl obeys only our flags."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_port(port: int, what: str, proc: subprocess.Popen[bytes] | None = None, logfile: Path | None = None) -> None:
    """Wait (bounded) until 127.0.0.1:port accepts; fail early if `proc` exits meanwhile."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} before listening{tail(logfile)}")
        if port_accepts(port):
            return
        time.sleep(0.05)
    raise BenchError(f"{what} did not listen on {HOST}:{port} within {STARTUP_TIMEOUT:.0f} s{tail(logfile)}")


def tail(logfile: Path | None, lines: int = 8) -> str:
    if logfile is None or not logfile.exists():
        return ""
    text = logfile.read_text(errors="replace").strip().splitlines()[-lines:]
    return ("; last log lines:\n    " + "\n    ".join(text)) if text else ""


@contextlib.contextmanager
def running(cmd: list[str], logfile: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` with output to `logfile`, in its own session (so Ctrl-C reaches only us); always stop it."""
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise MissingTool(f"{tool} not found: install Debian's {package} (apt-get install {package})")
    return path


def fmt(value: float, digits: int = 1) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


# ---------------------------------------------------------------- web server


@dataclass(frozen=True)
class WebServer:
    port: int
    root: Path
    blob_size: int
    blob_sha256: str
    small: bytes


def write_random_file(path: Path, size: int) -> str:
    h = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left > 0:
            block = os.urandom(min(CHUNK, left))
            f.write(block)
            h.update(block)
            left -= len(block)
    return h.hexdigest()


@contextlib.contextmanager
def web_server(tmp: Path, size: int) -> Iterator[WebServer]:
    root = tmp / "www"
    root.mkdir()
    log(f"web: writing {size / 1e6:.0f} MB of random bytes")
    digest = write_random_file(root / BLOB, size)
    small = os.urandom(SMALL_SIZE)
    (root / SMALL).write_bytes(small)
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", "--bind", HOST, "--directory", str(root), str(port)]
    logfile = tmp / "http.log"
    with running(cmd, logfile) as proc:
        wait_port(port, "http.server", proc, logfile)
        log(f"web: http://{HOST}:{port}/{BLOB} sha256={digest[:16]}...")
        yield WebServer(port, root, size, digest, small)


# ---------------------------------------------------------------- throughput (curl)


def curl_once(web: WebServer, out: Path, socks_port: int | None) -> float:
    """Download the blob once with curl; verify size and sha256; return MB/s (10^6 bytes per second)."""
    max_time = 30 + web.blob_size / 1.5e6  # generous: fails only below ~1.5 MB/s
    cmd = ["curl", "-q", "-sS", "--connect-timeout", "10", "--max-time", f"{max_time:.0f}"]
    cmd += ["-o", str(out), "-w", "%{http_code} %{size_download} %{time_total}"]
    cmd += ["--noproxy", "*"] if socks_port is None else ["--socks5-hostname", f"{HOST}:{socks_port}"]
    cmd.append(f"http://{HOST}:{web.port}/{BLOB}")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=max_time + 15)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"curl did not finish within {max_time + 15:.0f} s") from exc
    if res.returncode != 0:
        raise BenchError(f"curl failed (status {res.returncode}): {res.stderr.strip()}")
    fields = res.stdout.split()
    if len(fields) != 3:
        raise BenchError(f"unexpected curl -w output: {res.stdout!r}")
    code, size, seconds = fields
    if code != "200" or int(float(size)) != web.blob_size:
        raise BenchError(f"curl got HTTP {code} and {size} bytes, expected 200 and {web.blob_size}")
    digest = sha256_file(out)
    out.unlink()
    if digest != web.blob_sha256:
        raise BenchError(f"downloaded file's sha256 {digest} differs from the source's {web.blob_sha256}")
    return web.blob_size / float(seconds) / 1e6


def throughput(label: str, web: WebServer, tmp: Path, runs: int, socks_port: int | None) -> float:
    """Median MB/s over `runs` verified downloads (best and median printed)."""
    rates = []
    for i in range(runs):
        rate = curl_once(web, tmp / f"download-{label}.bin", socks_port)
        rates.append(rate)
        log(f"{label}: run {i + 1}/{runs} {rate:8.1f} MB/s (sha256 ok)")
    median = statistics.median(rates)
    log(f"{label}: best {max(rates):.1f} MB/s, median {median:.1f} MB/s")
    return median


# ---------------------------------------------------------------- connect latency (raw SOCKS5)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:  # bounded: each recv returns >= 1 byte or we raise; at most n iterations
        part = sock.recv(n - len(buf))
        if not part:
            raise BenchError(f"SOCKS proxy closed the connection ({len(buf)}/{n} bytes read)")
        buf += part
    return bytes(buf)


def read_socks_reply(sock: socket.socket) -> None:
    ver, rep, _rsv, atyp = recv_exact(sock, 4)
    if ver != 5 or rep != 0:
        raise BenchError(f"SOCKS CONNECT refused: version {ver}, reply code {rep}")
    if atyp == 1:
        recv_exact(sock, 4 + 2)
    elif atyp == 4:
        recv_exact(sock, 16 + 2)
    elif atyp == 3:
        recv_exact(sock, recv_exact(sock, 1)[0] + 2)
    else:
        raise BenchError(f"SOCKS reply with unknown address type {atyp}")


def read_response(sock: socket.socket, first: bytes, deadline: float) -> bytes:
    buf = bytearray(first)
    while len(buf) <= MAX_RESPONSE and time.monotonic() < deadline:
        part = sock.recv(65536)
        if not part:
            return bytes(buf)
        buf += part
    raise BenchError("HTTP response too long or too slow")


def socks_latency(proxy_port: int, web: WebServer) -> float:
    """One connection: seconds from sending CONNECT to the first byte of the HTTP response."""
    deadline = time.monotonic() + 3 * SOCK_TIMEOUT
    with socket.create_connection((HOST, proxy_port), timeout=SOCK_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"\x05\x01\x00")
        if recv_exact(sock, 2) != b"\x05\x00":
            raise BenchError("SOCKS proxy did not accept the no-authentication method")
        connect = b"\x05\x01\x00\x01" + socket.inet_aton(HOST) + web.port.to_bytes(2, "big")
        start = time.perf_counter()
        sock.sendall(connect)
        read_socks_reply(sock)
        sock.sendall(f"GET /{SMALL} HTTP/1.0\r\nHost: {HOST}:{web.port}\r\n\r\n".encode())
        first = sock.recv(1)
        elapsed = time.perf_counter() - start
        if not first:
            raise BenchError("connection closed before any HTTP response byte")
        response = read_response(sock, first, deadline)
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or head.split(b" ", 2)[1] != b"200" or body != web.small:
        raise BenchError(f"unexpected HTTP response through the proxy: {head[:80]!r}")
    return elapsed


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def connect_latency(label: str, proxy_port: int, web: WebServer, connects: int) -> float:
    """p50 in ms over `connects` sequential connections (p50/p90/p99 printed)."""
    budget = 60 + connects * 0.5
    deadline = time.monotonic() + budget
    samples = []
    for _ in range(connects):
        if time.monotonic() > deadline:
            raise BenchError(f"{label}: {connects} connections took longer than {budget:.0f} s")
        try:
            samples.append(socks_latency(proxy_port, web) * 1000)
        except OSError as exc:
            raise BenchError(f"{label}: SOCKS connection {len(samples) + 1}/{connects} failed: {exc!r}") from exc
    samples.sort()
    p50 = statistics.median(samples)
    log(
        f"{label}: connect latency over {connects} connections (CONNECT -> first HTTP byte): "
        f"p50 {p50:.3f} ms, p90 {percentile(samples, 90):.3f} ms, p99 {percentile(samples, 99):.3f} ms, "
        f"max {samples[-1]:.3f} ms"
    )
    return p50


# ---------------------------------------------------------------- OpenSSH (private sshd + ssh -D)


def sshd_config(tmp: Path, port: int, user: str) -> Path:
    lines = [
        f"ListenAddress {HOST}",
        f"Port {port}",
        f"HostKey {tmp / 'host_ed25519'}",
        f"PidFile {tmp / 'sshd.pid'}",
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}",
        f"AllowUsers {user}",
        "UsePAM no",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "AllowTcpForwarding yes",
        "X11Forwarding no",
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
        "LogLevel INFO",
    ]
    path = tmp / "sshd_config"
    path.write_text("\n".join(lines) + "\n")
    return path


def keygen(path: Path) -> None:
    cmd = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "flownet-bench", "-f", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise BenchError(f"ssh-keygen failed: {res.stderr.strip()}")


@contextlib.contextmanager
def privsep_dir() -> Iterator[None]:
    """Running as root, sshd wants /run/sshd (Debian's service unit creates it); make it if missing, then remove."""
    if os.geteuid() != 0 or PRIVSEP_DIR.exists():
        yield
        return
    log(f"ssh: creating {PRIVSEP_DIR} (sshd's privilege separation directory) for this run")
    PRIVSEP_DIR.mkdir(mode=0o755)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            PRIVSEP_DIR.rmdir()


def negotiated_cipher(logfile: Path) -> str:
    text = logfile.read_text(errors="replace")
    found = re.search(r"kex: server->client cipher: (\S+) MAC: (\S+)", text)
    return f"{found.group(1)} (MAC {found.group(2)})" if found else "unknown"


def sshd_hint(logfile: Path, user: str) -> str:
    if "account is locked" in logfile.read_text(errors="replace"):
        return (
            f"\n  sshd (UsePAM no) refuses {user}: its account is locked (no usable password field); "
            "run the benchmark as root or as a regular login user"
        )
    return ""


@contextlib.contextmanager
def ssh_socks(tmp: Path) -> Iterator[int]:
    """A private sshd on loopback and `ssh -N -D` against it; yields the SOCKS port; stops both."""
    sshd_dir = tmp / "sshd"
    sshd_dir.mkdir()
    keygen(sshd_dir / "host_ed25519")
    keygen(sshd_dir / "user_ed25519")
    shutil.copyfile(sshd_dir / "user_ed25519.pub", sshd_dir / "authorized_keys")
    user = pwd.getpwuid(os.getuid()).pw_name
    sshd_port, socks_port = free_port(), free_port()
    config = sshd_config(sshd_dir, sshd_port, user)
    version = subprocess.run(["ssh", "-V"], capture_output=True, text=True, timeout=10).stderr.strip()
    log(f"ssh: {version}; private sshd on {HOST}:{sshd_port} as {user}, SOCKS on {HOST}:{socks_port}")
    sshd_log, ssh_log = sshd_dir / "sshd.log", sshd_dir / "ssh.log"
    client = ["ssh", "-v", "-N", "-F", "/dev/null", "-D", f"{HOST}:{socks_port}", "-p", str(sshd_port)]
    client += ["-i", str(sshd_dir / "user_ed25519"), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"]
    client += ["-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "StrictHostKeyChecking=no"]
    client += ["-o", "UserKnownHostsFile=/dev/null", "-o", "ServerAliveInterval=0", f"{user}@{HOST}"]
    with privsep_dir(), running([str(SSHD), "-D", "-e", "-f", str(config)], sshd_log) as sshd:
        wait_port(sshd_port, "sshd", sshd, sshd_log)
        with running(client, ssh_log) as ssh:
            try:
                wait_port(socks_port, "ssh -D", ssh, ssh_log)
            except BenchError as exc:
                raise BenchError(f"{exc}\n  sshd's log{tail(sshd_log)}{sshd_hint(sshd_log, user)}") from exc
            log(f"ssh: negotiated cipher {negotiated_cipher(ssh_log)}")
            yield socks_port
            if ssh.poll() is not None:
                raise BenchError(f"ssh -D exited during the benchmark{tail(ssh_log)}")


# ---------------------------------------------------------------- FlowNet


def flownet_log(*parts: object) -> None:
    print("  [flownet]", *parts, flush=True)


@contextlib.contextmanager
def flownet_socks(tmp: Path, external_port: int | None) -> Iterator[int | None]:
    """The FlowNet client's SOCKS port: an already-running endpoint (`--socks`) or a LocalTunnelNet we run."""
    if external_port is not None:
        if not port_accepts(external_port):
            raise BenchError(f"nothing accepts connections on {HOST}:{external_port} (--socks)")
        log(f"flownet: using the SOCKS5 endpoint already running on {HOST}:{external_port}")
        yield external_port
        return
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)  # this checkout's flownet, not whichever the venv points at
    try:
        from flownet.tunnel.localnet import LocalTunnelNet
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name in ("flownet.tunnel.localnet", "flownet.tunnel"):
            log("flownet tunnel not available (flownet.tunnel.localnet missing)")
        else:
            log(f"flownet tunnel not available (importing flownet.tunnel.localnet failed: {exc})")
        yield None
        return
    workdir = tmp / "flownet"
    workdir.mkdir()
    with LocalTunnelNet(workdir, allow=(f"{HOST}/32",), log=flownet_log) as net:
        port = int(net.socks_port)
        wait_port(port, "FlowNet SOCKS listener")
        log(f"flownet: provider and client up, SOCKS on {HOST}:{port}")
        yield port


# ---------------------------------------------------------------- main


@dataclass
class Results:
    direct_mb_s: float = math.nan
    ssh_mb_s: float = math.nan
    flownet_mb_s: float = math.nan
    ssh_p50_ms: float = math.nan
    flownet_p50_ms: float = math.nan

    def summary(self) -> str:
        ratio = self.flownet_mb_s / self.ssh_mb_s if self.ssh_mb_s > 0 else math.nan
        return (
            f"flownet_mb_s={fmt(self.flownet_mb_s)} ssh_mb_s={fmt(self.ssh_mb_s)} "
            f"direct_mb_s={fmt(self.direct_mb_s)} ratio={fmt(ratio, 3)} "
            f"connect_p50_ms={fmt(self.flownet_p50_ms, 3)} ssh_connect_p50_ms={fmt(self.ssh_p50_ms, 3)}"
        )

    def verdict(self) -> str:
        if math.isnan(self.flownet_mb_s) or math.isnan(self.ssh_mb_s):
            return "target: not evaluated (needs both ssh and flownet)"
        fast = self.flownet_mb_s >= self.ssh_mb_s
        quick = self.flownet_p50_ms <= self.ssh_p50_ms
        return (
            f"target: throughput >= OpenSSH {'met' if fast else 'NOT met'}; "
            f"connect p50 <= OpenSSH {'met' if quick else 'NOT met'}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the downloaded file in MB (10^6 bytes)")
    parser.add_argument("--connects", type=int, default=200, help="connections for the connect latency")
    parser.add_argument("--runs", type=int, default=3, help="downloads per mode (the median is reported)")
    parser.add_argument("--only", default=",".join(MODES), help="comma-separated subset of direct,ssh,flownet")
    parser.add_argument("--socks", type=int, metavar="PORT", help="measure this running SOCKS5 endpoint as flownet")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        parser.error(f"--only takes a comma-separated subset of {','.join(MODES)} (got {args.only!r})")
    if not (1 <= args.size_mb <= 100_000 and 1 <= args.connects <= 100_000 and 1 <= args.runs <= 100):
        parser.error("--size-mb, --connects and --runs must be positive (and sane)")
    args.modes = modes
    return args


def check_tools(modes: list[str]) -> None:
    require("curl", "curl")
    if "ssh" in modes:
        if not SSHD.exists():
            raise MissingTool("sshd not found: install Debian's openssh-server (apt-get install openssh-server)")
        require("ssh", "openssh-client")
        require("ssh-keygen", "openssh-client")


def check_space(tmp: Path, size: int) -> None:
    free = shutil.disk_usage(tmp).free
    if free < 2 * size + 50_000_000:
        raise BenchError(f"{tmp} has {free / 1e6:.0f} MB free; the benchmark needs about {2 * size / 1e6:.0f} MB")


def run(args: argparse.Namespace, tmp: Path) -> Results:
    size = args.size_mb * 1_000_000
    check_space(tmp, size)
    results = Results()
    with web_server(tmp, size) as web:
        if "direct" in args.modes:
            results.direct_mb_s = throughput("direct", web, tmp, args.runs, None)
        if "ssh" in args.modes:
            with ssh_socks(tmp) as port:
                results.ssh_mb_s = throughput("ssh", web, tmp, args.runs, port)
                results.ssh_p50_ms = connect_latency("ssh", port, web, args.connects)
        if "flownet" in args.modes:
            with flownet_socks(tmp, args.socks) as port:
                if port is not None:
                    results.flownet_mb_s = throughput("flownet", web, tmp, args.runs, port)
                    results.flownet_p50_ms = connect_latency("flownet", port, web, args.connects)
    return results


def on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwind through the finally blocks that stop sshd, ssh and the web server


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        check_tools(args.modes)
        with tempfile.TemporaryDirectory(prefix="flownet-bench-") as name:
            results = run(args, Path(name))
    except MissingTool as exc:
        print(exc, file=sys.stderr, flush=True)
        return 2
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return 130
    log(results.verdict())
    log(results.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
