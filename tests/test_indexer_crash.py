"""(b) Crash safety: the indexer, run as its own process, is SIGKILLed at random points of a backfill of a
few thousand events, restarted each time, and must end with exactly the state of a clean run.

Importing web3 takes about two seconds, so the killed processes are forked from a small fork server that
imported `indexer.sync` once (each child runs ``indexer.sync.main(argv)``, as ``python -m indexer.sync``
does, in a process of its own, and is killed by its PID). The last run is a plain ``python -m indexer.sync``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flownet.devnet import Anvil
from tests.indexer_helpers import Sim, check_reconciles, close_all, index_fresh, log_keys, node_log_keys

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_helpers() -> Iterator[None]:
    yield
    close_all()


FORK_SERVER = r"""
import json, os, sys, traceback
from indexer.events import decoders
from indexer.sync import main
decoders()  # the ABI tables, as a long-running indexer has them
print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "run":
        pid = os.fork()
        if pid == 0:
            out = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            try:
                code = main(cmd["args"])
            except BaseException:
                traceback.print_exc()
                code = 70
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        print(pid, flush=True)
    elif cmd["op"] == "wait":
        print(os.waitpid(cmd["pid"], 0)[1], flush=True)
"""


class ForkServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self._read() == "ready"

    def _read(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def _send(self, command: dict[str, object]) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def run(self, args: list[str], log: Path) -> int:
        return int(self._send({"op": "run", "args": args, "log": str(log)}))

    def wait(self, pid: int) -> int:
        return int(self._send({"op": "wait", "pid": pid}))

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def cursor_of(db: Path) -> int | None:
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT block_number FROM cursor").fetchone()
    except sqlite3.OperationalError:  # killed before the first migration committed
        return None
    finally:
        conn.close()
    return row[0] if row else None


def test_sigkill_at_random_points_never_loses_duplicates_or_invents_an_event(tmp_path: Path) -> None:
    with Anvil() as node:
        sim = Sim(node.url, clients=6, providers=2, seed=11)
        for _ in range(4):  # ~2,800 events in ~360 blocks, and 600 blocks without any
            sim.activity(300)
            sim.mine(150)
        head = sim.head()
        expected = node_log_keys(sim, head)
        assert len(expected) >= 2500
        manifest = tmp_path / "deployment.json"
        sim.deployment.save(manifest)
        started = time.perf_counter()
        reference = index_fresh(sim.url, sim.deployment, tmp_path / "clean.db")
        clean_seconds = time.perf_counter() - started
        print(f"clean backfill: {len(expected)} events, {head} blocks in {clean_seconds:.2f} s")

        db = tmp_path / "crashy.db"
        log = tmp_path / "indexer.log"
        # One block per batch: hundreds of commits, so the kills land before, inside and between them.
        args = ["--rpc", node.url, "--manifest", str(manifest), "--db", str(db), "--until", str(head)]
        args += ["--range", "1", "--max-range", "1", "--poll", "0.05"]
        rng = random.Random(2024)
        server = ForkServer()
        kills, advanced, idle = 0, 0, 0
        # The latest kill, in seconds after the start, steered so a killed run indexes about head/40 blocks
        # whatever the machine's speed: wider while kills land in the start-up, narrower when runs go far.
        longest, target = 0.15, head / 40
        # 30 kills, and more (up to 80) until 10 of them made progress: on a loaded machine more runs die
        # in their start-up before the steering widens the window.
        deadline = time.monotonic() + 90
        try:
            while (
                (kills < 30 or advanced < 10)
                and kills < 80
                and time.monotonic() < deadline
                and (cursor_of(db) or 0) < head - 30
            ):
                before = cursor_of(db)
                pid = server.run(args, log)
                time.sleep(rng.uniform(0.0, longest))
                os.kill(pid, signal.SIGKILL)
                status = server.wait(pid)
                assert not os.WIFEXITED(status), f"exited by itself ({status}): {log.read_text()[-2000:]}"
                assert os.WTERMSIG(status) == signal.SIGKILL
                kills += 1
                after = cursor_of(db)
                if after is not None and after != before:
                    advanced += 1
                    idle = 0
                    assert before is None or after > before
                    if after - (before or 0) > 2 * target:
                        longest *= 0.7
                else:
                    idle += 1
                    if idle >= 3:
                        longest, idle = longest * 1.5, 0
        finally:
            server.close()
        assert kills >= 20, f"only {kills} kills before the backfill was nearly done"
        assert advanced >= 10, f"only {advanced} of {kills} killed runs made progress"
        assert (cursor_of(db) or 0) < head

        # The last run: the real entry point, to the end.
        done = subprocess.run(
            [sys.executable, "-m", "indexer.sync", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert f"stopped at block {head}" in done.stdout

        from indexer.store import Ledger

        ledger = Ledger(db, sim.deployment.addresses, sim.deployment.chain_id)
        assert ledger.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert log_keys(ledger) == expected  # none missing, none twice, none invented
        assert ledger.state_hash() == reference.state_hash()
        check_reconciles(ledger, sim)
        ledger.close()
        sim.close()
        print(f"{kills} kills, {advanced} after progress, kills up to {longest:.2f} s after the start")


def test_sigterm_stops_a_following_indexer_cleanly(tmp_path: Path) -> None:
    with Anvil() as node:
        sim = Sim(node.url, clients=2, providers=1, seed=3)
        sim.activity(20)
        manifest = tmp_path / "deployment.json"
        sim.deployment.save(manifest)
        db = tmp_path / "follow.db"
        args = ["--rpc", node.url, "--manifest", str(manifest), "--db", str(db), "--poll", "0.05", "-v"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "indexer.sync", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def reaches(block: int) -> bool:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and proc.poll() is None:
                    if cursor_of(db) == block:
                        return True
                    time.sleep(0.05)
                return False

            assert reaches(sim.head())
            sim.blocks_with_events(3)  # it follows the head
            assert reaches(sim.head())
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert f"stopped at block {sim.head()}" in out
        sim.close()
