"""A verifier's probes through the real tunnel catch a faulty provider (flownet.tunnel.faults).

An honest provider passes every kind; one that over-meters is caught by comparing its METER frames
with the client's own count; one that drops streams is judged unreachable. One event loop, 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tunnel_helpers import LocalWeb, Tunnel, random_file, run

from flownet.agents.probe import ProbeTarget, probe
from flownet.core.verdicts import Measurements, Thresholds, Verdict, judge
from flownet.errors import ConfigError
from flownet.tunnel.faults import Faults

KIB = 1 << 10
SIZE = 256 * KIB
# generous latency and throughput limits: this test is about metering and availability, not the machine's speed
LOOSE = Thresholds(max_connect_seconds=5.0, min_throughput=1.0, min_availability=0.8)


def probe_round(tmp_path: Path, faults: Faults | None, downloads: int = 4) -> tuple[Measurements, int, int]:
    """(measurements, provider's real metered count, client count) of one probe round."""

    async def main() -> tuple[Measurements, int, int]:
        t = Tunnel(tmp_path, receipt_interval=64 * KIB).standard()
        server = await t.start_provider(faults=faults)
        client = await t.start_client()
        with random_file(tmp_path, "probe.bin", SIZE), LocalWeb(tmp_path) as web:
            target = ProbeTarget.parse(f"http://127.0.0.1:{web.port}/probe.bin")
            m = await probe(client, target, connects=2, downloads=downloads, timeout=5.0, settle=2.0)
        await client.stop()
        await server.stop()
        return m, t.metered(), client.total

    return run(main(), 60)  # type: ignore[return-value]


def test_honest_provider_passes(tmp_path: Path) -> None:
    m, metered, total = probe_round(tmp_path, None)
    assert m.probes == (True,) * 4 and len(m.connect_seconds) == 2 and len(m.throughput) == 4
    # the provider's METER is exactly the client's own count
    assert m.provider_metered == m.client_bytes == total == metered
    assert m.client_bytes > 4 * SIZE and m.round_bytes == m.client_bytes  # a fresh order: all in this round
    assert judge(m, LOOSE) == {k: Verdict.PASS for k in ("unreachable", "latency", "throughput", "metering")}


def test_over_metering_provider_is_caught_by_meter_frames(tmp_path: Path) -> None:
    m, metered, total = probe_round(tmp_path, Faults.parse(["over-meter"]))
    assert m.probes == (True,) * 4  # it serves fine ...
    assert m.provider_metered is not None
    # ... but books and reports about 1.5 times what the client counted
    assert m.provider_metered == metered
    assert 1.45 * total <= m.provider_metered <= 1.55 * total
    verdicts = judge(m, LOOSE)
    assert verdicts["metering"] is Verdict.FAIL
    assert verdicts["unreachable"] is Verdict.PASS


def test_dropping_provider_is_unreachable(tmp_path: Path) -> None:
    m, _, _ = probe_round(tmp_path, Faults.parse(["drop-streams:every=2,after=1024"]), downloads=6)
    # every 2nd stream (connect probes count too: streams 2, 4, 6, 8 of 8) is cut after 1 KiB
    assert m.probes.count(False) == 3 and m.probes.count(True) == 3
    assert m.availability == 0.5
    verdicts = judge(m, LOOSE)
    assert verdicts["unreachable"] is Verdict.FAIL
    assert verdicts["metering"] is Verdict.PASS  # it drops, but counts honestly


def test_unreachable_provider_has_no_session(tmp_path: Path) -> None:
    async def main() -> Measurements:
        t = Tunnel(tmp_path).standard()
        server = await t.start_provider()
        client = await t.start_client()
        await server.stop()  # nobody listens any more
        client.config.connect_timeout = 2.0
        m = await probe(client, ProbeTarget.parse("http://127.0.0.1:9/x"), timeout=2.0)
        await client.stop()
        return m

    m = run(main(), 30)
    assert isinstance(m, Measurements) and m.session_error and "cannot reach the provider" in m.session_error
    assert judge(m, LOOSE) == {
        "unreachable": Verdict.FAIL,
        "latency": Verdict.UNKNOWN,
        "throughput": Verdict.UNKNOWN,
        "metering": Verdict.UNKNOWN,
    }


@pytest.mark.parametrize(
    ("specs", "text"),
    [
        (["bogus"], "unknown fault 'bogus'"),
        (["drop-streams:every=0"], "every must be >= 1"),
        (["drop-streams:often=2"], "invalid option 'often=2'"),
        (["over-meter:factor=1"], "factor must be above 1"),
        (["over-meter:factor=x"], "factor must be a number"),
    ],
)
def test_fault_specs_refused(specs: list[str], text: str) -> None:
    with pytest.raises(ConfigError, match=text):
        Faults.parse(specs)


def test_faults_off_by_default() -> None:
    faults = Faults.parse([])
    assert not faults.active and faults.describe() == "none"
    assert [faults.doom_next_stream() for _ in range(5)] == [False] * 5
    assert faults.metered(1000) == 1000
    both = Faults.parse(["drop-streams:every=3,after=10", "over-meter:factor=2"])
    assert both.active and [both.doom_next_stream() for _ in range(6)] == [False, False, True] * 2
    assert both.metered(1000) == 2000 and both.drop_after == 10
