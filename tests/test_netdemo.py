"""`make demo` end to end: the whole network on a devnet, each outcome asserted.

A full node, an honest and a faulty provider (`--fault drop-streams --fault over-meter`), three
verifiers and a client run as separate `flownet` processes. The client's download through the honest
provider must arrive intact; the verifiers must catch the faulty provider, open a dispute at quorum
and execute it after the challenge window; the slash must take stake, pay the verifiers at most half
and burn the rest; the faulty provider's network trust score must fall with the evidence as reason,
and its certificate must be revoked; the honest provider must stay untouched; and `flownet fullnode
reconcile` must find the ledger equal to the chain.
"""

from __future__ import annotations

from pathlib import Path

from flownet.netdemo import NetworkDemo, summary


def test_the_whole_network(tmp_path: Path) -> None:
    lines: list[str] = []
    out = NetworkDemo(tmp_path, say=lines.append, challenge_window=15, file_mb=5, timeout=240).run()

    assert out.fetched_ok and out.fetched_bytes == 5_000_000
    dispute = out.dispute
    assert dispute["provider"] == out.faulty
    assert dispute["status"] == "executed"
    assert len(set(dispute["verifiers"])) >= 2 and set(dispute["verifiers"]) <= set(out.verifiers)
    assert dispute["kind_name"] in ("unreachable", "metering", "throughput", "latency")
    slashed, reward, burned = int(dispute["slashed"]), int(dispute["reward"]), int(dispute["burned"])
    # a quorum dispute pays its accusers nothing: the whole slash is burned
    assert slashed > 0 and reward == 0 and burned == slashed and int(dispute["due"]) == slashed
    # Every slash halves the network score. The faulty provider keeps failing (and, once its certificate is
    # revoked, cannot be reached at all), so on a slow machine a second dispute may be executed before the
    # demo reads the score: count the slashes instead of assuming exactly one.
    history = out.faulty_trust["history"]  # newest first
    slashes = len(history)
    assert slashes >= 1 and out.faulty_trust["score"] == 500 >> slashes
    assert [(h["old"], h["new"]) for h in reversed(history)] == [(500 >> i, 500 >> (i + 1)) for i in range(slashes)]
    assert dispute["evidence_cid"] in {h["reason_cid"] for h in history}
    assert out.honest_trust["score"] == 500 and out.honest_disputes == 0
    assert (
        out.faulty_cert_exit == 11
        and out.faulty_cert_status.startswith("revoked")
        and "slashed" in out.faulty_cert_status
    )
    assert out.reconcile.startswith("ledger agrees with the chain")
    table = summary(out)
    assert "executed" in table and "revoked" in table and f"500 → {500 >> slashes}" in table
    assert any("slash:" in line for line in lines) and any("reconcile:" in line for line in lines)
