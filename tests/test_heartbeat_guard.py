"""The heartbeat signer never signs two endpoints for one (provider, epoch): the rule, the SQLite record,
the sender's re-read endpoint, and `provider serve`'s heartbeat thread, all on a controllable clock."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account

from flownet.core.heartbeat import HeartbeatDomain, endpoint_hash
from flownet.core.heartbeat_guard import (
    RETAIN_EPOCHS,
    EndpointAlreadySigned,
    EpochEndpoint,
    EpochTooOld,
    HeartbeatRefused,
    check_endpoint,
)
from flownet.errors import FlowNetError
from flownet.heartbeats import HeartbeatRecord, HeartbeatSender, HeartbeatSigner, record_path
from tests.heartbeat_helpers import DOMAIN, FakeFullNode, assert_no_equivocation, endpoints_named

ALICE = Account.from_key(b"\x11" * 32)
EPOCH = 30
T0 = 1_800_000_000 - 1_800_000_000 % EPOCH  # the first second of an epoch
A, B, C = "a.example.net:7443", "b.example.net:7443", "c.example.net:7443"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signer(path: Path, clock: Clock, domain: HeartbeatDomain = DOMAIN) -> HeartbeatSigner:
    return HeartbeatSigner(ALICE, domain, HeartbeatRecord(path), epoch_seconds=EPOCH, clock=clock)


# ---------------------------------------------------------------------------- the pure rule


def test_rule_refuses_another_endpoint_and_names_everything() -> None:
    recorded = EpochEndpoint(ALICE.address, 7, A)
    check_endpoint(None, ALICE.address, 7, B, 0)
    check_endpoint(recorded, ALICE.address.lower(), 7, A, 0)
    with pytest.raises(EndpointAlreadySigned) as caught:
        check_endpoint(recorded, ALICE.address.lower(), 7, B, 0)
    refused = caught.value
    assert isinstance(refused, FlowNetError) and refused.exit_code == 13
    assert (refused.provider, refused.epoch, refused.signed_endpoint, refused.refused_endpoint) == (
        ALICE.address,
        7,
        A,
        B,
    )
    text = str(refused)
    assert ALICE.address in text and "epoch 7" in text and repr(A) in text and repr(B) in text
    assert "from epoch 8" in text


def test_rule_refuses_an_epoch_below_the_floor() -> None:
    with pytest.raises(EpochTooOld, match=r"for epoch 4: .* from 5 on"):
        check_endpoint(None, ALICE.address, 4, A, 5)
    check_endpoint(None, ALICE.address, 5, A, 5)


# ---------------------------------------------------------------------------- the signer and its record


def test_same_endpoint_any_number_of_times_but_no_second_endpoint(tmp_path: Path) -> None:
    clock = Clock()
    s = signer(tmp_path / "hb.sqlite", clock)
    first = s.sign(A, 10)
    clock.now += 5
    again = s.sign(A, 20)  # another load and timestamp: fine
    with pytest.raises(EndpointAlreadySigned, match=f"epoch {T0 // EPOCH}"):
        s.sign(B, 10)
    clock.now = T0 + EPOCH  # the next epoch
    later = s.sign(B, 10)
    assert [h.heartbeat.load for h in (first, again)] == [10, 20]
    epochs = assert_no_equivocation([first, again, later], ALICE.address, EPOCH)
    assert epochs == {T0 // EPOCH: endpoint_hash(A), T0 // EPOCH + 1: endpoint_hash(B)}
    assert s.record.endpoint_of(DOMAIN, ALICE.address, T0 // EPOCH) == A


def test_the_record_is_committed_before_the_signature_is_returned(tmp_path: Path) -> None:
    """A second connection (another process would use one) sees the claim as soon as sign() returns."""
    path = tmp_path / "hb.sqlite"
    signed = signer(path, Clock()).sign(A, 0)
    row = sqlite3.connect(path).execute("SELECT epoch, endpoint, endpoint_hash FROM signed_epochs").fetchall()
    assert row == [(signed.heartbeat.epoch, A, "0x" + endpoint_hash(A).hex())]
    record = HeartbeatRecord(path)
    assert record._conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert record._conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_deployments_have_separate_records(tmp_path: Path) -> None:
    other = HeartbeatDomain(31337, "0x" + "77" * 20)
    clock = Clock()
    signer(tmp_path / "hb.sqlite", clock).sign(A, 0)
    signed = signer(tmp_path / "hb.sqlite", clock, other).sign(B, 0)
    assert signed.heartbeat.endpoint_hash == endpoint_hash(B)


def test_old_epochs_are_forgotten_and_then_refused(tmp_path: Path) -> None:
    clock = Clock()
    s = signer(tmp_path / "hb.sqlite", clock)
    s.sign(A, 0)
    clock.now = T0 + RETAIN_EPOCHS * EPOCH  # RETAIN_EPOCHS epochs later: the first one is dropped
    s.sign(B, 0)
    assert s.record._conn.execute("SELECT count(*) FROM signed_epochs").fetchone() == (1,)
    clock.now = T0  # the clock went back: epoch T0 // EPOCH's endpoint is no longer known
    with pytest.raises(EpochTooOld, match=f"epoch {T0 // EPOCH}: "):
        s.sign(A, 0)


def test_a_restart_in_the_epoch_keeps_the_old_endpoint_until_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """(b) The sender is stopped and started again, mid-epoch, with a changed endpoint."""
    path, clock = tmp_path / "hb.sqlite", Clock(T0 + 3)
    first = HeartbeatSender(signer(path, clock), lambda: A)
    sent = [first.beat(0).signed]
    first.signer.record.close()  # the process stops

    clock.now = T0 + 12
    restarted = HeartbeatSender(signer(path, clock), lambda: B)  # a new record object: only the file persists
    caplog.set_level(logging.INFO, "flownet.heartbeat")
    beats = []
    for _ in range(8):  # 8 beats, 6 s apart: 12 s .. 54 s, crossing into the next epoch at 30 s
        beats.append(restarted.beat(0))
        clock.now += 6
    sent += [b.signed for b in beats]
    assert_no_equivocation(sent, ALICE.address, EPOCH)
    names = endpoints_named(sent, A, B)
    assert names == [A, A, A, A, B, B, B, B, B]
    assert [b.deferred for b in beats] == [B, B, B, None, None, None, None, None]
    waits = [r.getMessage() for r in caplog.records if "waits for epoch" in r.getMessage()]
    assert len(waits) == 1  # said once, not at every beat
    assert f"endpoint {B} waits for epoch {T0 // EPOCH + 1}" in waits[0]
    assert f"already has heartbeats signed for {A}" in waits[0]


def test_an_endpoint_change_inside_a_running_sender_waits_for_the_next_epoch(tmp_path: Path) -> None:
    """(c) The endpoint is re-read at every beat: a change mid-epoch takes effect at the next epoch."""
    clock = Clock(T0)
    current = {"endpoint": A}
    sender = HeartbeatSender(signer(tmp_path / "hb.sqlite", clock), lambda: current["endpoint"])
    beats = []
    for i in range(20):  # 5 s apart: epochs of 6 beats
        if i == 4:
            current["endpoint"] = B  # mid first epoch
        if i == 14:
            current["endpoint"] = C  # mid third epoch
        beats.append(sender.beat(i))
        clock.now += 5
    assert_no_equivocation([b.signed for b in beats], ALICE.address, EPOCH)
    names = endpoints_named([b.signed for b in beats], A, B, C)
    assert names == [A] * 6 + [B] * 12 + [C] * 2
    assert [b.deferred for b in beats][4:6] == [B, B] and [b.deferred for b in beats][14:18] == [C] * 4


def test_an_unreadable_endpoint_keeps_the_last_one(tmp_path: Path) -> None:
    reads = iter([A])

    def read() -> str:
        try:
            return next(reads)
        except StopIteration:
            raise FlowNetError("metadata unavailable") from None

    sender = HeartbeatSender(signer(tmp_path / "hb.sqlite", Clock()), read)
    assert sender.beat(0).endpoint == A
    assert sender.beat(0).endpoint == A
    with pytest.raises(FlowNetError, match="metadata unavailable"):
        HeartbeatSender(signer(tmp_path / "other.sqlite", Clock()), read).beat(0)


# ---------------------------------------------------------------------------- provider serve's sender


def test_provider_serve_heartbeats_pick_up_a_new_endpoint_at_the_next_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`provider serve --fullnode`'s thread re-reads the on-chain metadata before every heartbeat (here a
    stand-in) and signs through the record; the clock is the test's, one step per heartbeat."""
    from flownet.cli import tunnel

    clock = Clock(T0 + 1)
    stop = threading.Event()
    script = [A, A, A, B, B, B, B, B, B, B]  # the metadata endpoint at each heartbeat, 5 s apart
    reads: list[str] = []

    def current_metadata(app: Any, net: Any) -> SimpleNamespace:
        clock.now = T0 + 1 + 5 * len(reads)  # heartbeats 0..5 in one epoch, 6.. in the next
        reads.append(script[len(reads)])
        if len(reads) == len(script):
            stop.set()
        return SimpleNamespace(endpoint=reads[-1])

    monkeypatch.setattr(tunnel, "_current_metadata", current_metadata)
    monkeypatch.setattr("flownet.chain.market.FlowNet", lambda *args: object())
    home = tmp_path / "home"
    app = SimpleNamespace(
        w3=None,
        deployment=None,
        settings=SimpleNamespace(home=home, manifest=tmp_path / "no-manifest.json"),
        err=SimpleNamespace(print=lambda *a: None),
    )
    with FakeFullNode(EPOCH) as node:
        thread = threading.Thread(target=tunnel._heartbeats, args=(app, ALICE, node.url, stop, 0.01, clock))
        thread.start()
        thread.join(30)
        assert not thread.is_alive()
        received = node.received()
    assert len(received) == len(script)
    assert_no_equivocation(received, ALICE.address, EPOCH)
    assert endpoints_named(received, A, B) == [A] * 6 + [B] * 4
    assert HeartbeatRecord(record_path(home, ALICE.address)).endpoint_of(DOMAIN, ALICE.address, T0 // EPOCH) == A


def test_refusal_is_a_flownet_error() -> None:
    assert issubclass(HeartbeatRefused, FlowNetError)
    assert issubclass(EndpointAlreadySigned, HeartbeatRefused) and issubclass(EpochTooOld, HeartbeatRefused)
