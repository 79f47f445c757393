"""What a verifier concludes from probing a provider, and how verifiers agree on one evidence CID.

Pure functions over frozen dataclasses; the verifier agent (flownet/agents/verifier.py) does the I/O.

**Judging.** A round of probes yields `Measurements`: connect latencies (seconds, one per successful
connect through the tunnel), probe outcomes (True for a download that arrived whole), throughput
samples (bytes/second of whole downloads), the client's own byte count for the order and the
provider's reported one (its latest METER frame). `judge` compares them with `Thresholds` and gives
one `Verdict` per failure kind of the SlashingManager (``KINDS``, from flownet.core.eip712):

- ``unreachable``: FAIL when the share of successful probes is below ``min_availability`` (no tunnel
  session at all counts as 0);
- ``latency``: FAIL when the median connect latency exceeds ``max_connect_seconds``;
- ``throughput``: FAIL when the median throughput is below ``min_throughput`` bytes/second;
- ``metering``: FAIL when the provider's count exceeds the client's by more than
  ``metering_tolerance`` times the bytes of this round plus ``metering_slack`` bytes. Both counts are
  cumulative over the order; the tolerance scales with this round's traffic (`round_bytes`), so an
  excess is caught however much the order carried before.

A kind without the data to judge it (no successful connect, no METER frame) is UNKNOWN, never FAIL:
a verifier only attests to what it measured.

**Converging on one CID.** The contract counts signatures over Attestation(provider, epoch, kind,
evidenceCid), so every verifier must sign the same CID, while each stores its own evidence document
(whose CID differs). `choose_cid` settles it deterministically from what the full node holds for
(provider, epoch, kind): the CID with the most distinct valid signers wins, ties go to the smallest
CID string; with nothing posted yet, the verifier's own CID. A verifier adopts another's CID only
after its own probes failed the same kind in the same epoch; every verifier that sees the same set
of attestations picks the same CID, so concurrent first posts converge in the next round.

Verifiers probing a few seconds apart may straddle an epoch boundary. `choose_target` therefore also
looks at the previous ``adopt_epochs`` epochs: a verifier whose own probe in epoch e failed a kind
co-signs a not-yet-disputed attestation group of the same provider and kind from e-1 (...) when one
exists (the group with the most signers wins, then the earlier epoch), so a failure that persists
across the boundary still reaches quorum. With ``adopt_epochs=0`` a verifier signs only its own epoch.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from flownet.core.attestation import Attestation
from flownet.core.eip712 import KINDS

__all__ = [
    "KINDS",
    "Attestation",
    "Measurements",
    "Thresholds",
    "Verdict",
    "choose_cid",
    "choose_target",
    "judge",
    "quorum_signatures",
]


class Verdict(Enum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Thresholds:
    """What a provider must achieve; the defaults suit a local devnet."""

    max_connect_seconds: float = 1.0
    min_throughput: float = 1 << 20  # bytes per second
    min_availability: float = 0.8  # share of probes that must succeed
    metering_tolerance: float = 0.02  # relative over-report tolerated
    metering_slack: int = 4096  # absolute bytes tolerated (frames in flight, rounding)

    def __post_init__(self) -> None:
        if self.max_connect_seconds <= 0:
            raise ValueError(f"max_connect_seconds must be positive (not {self.max_connect_seconds})")
        if self.min_throughput < 0:
            raise ValueError(f"min_throughput must be non-negative (not {self.min_throughput})")
        if not 0 <= self.min_availability <= 1:
            raise ValueError(f"min_availability must be in 0..1 (not {self.min_availability})")
        if self.metering_tolerance < 0 or self.metering_slack < 0:
            raise ValueError("metering tolerance and slack must be non-negative")


@dataclass(frozen=True)
class Measurements:
    """One round of probes of one provider."""

    connect_seconds: tuple[float, ...] = ()
    probes: tuple[bool, ...] = ()
    throughput: tuple[float, ...] = ()  # bytes per second of whole downloads
    client_bytes: int = 0
    provider_metered: int | None = None
    session_error: str | None = None  # the tunnel session could not be set up at all
    round_bytes: int | None = None  # of client_bytes, those carried in this round (None: all of them)

    @property
    def availability(self) -> float:
        if self.session_error is not None or not self.probes:
            return 0.0
        return sum(self.probes) / len(self.probes)

    def to_json(self) -> dict[str, object]:
        return {
            "connect_seconds": list(self.connect_seconds),
            "probes": list(self.probes),
            "availability": self.availability,
            "throughput_bytes_per_second": list(self.throughput),
            "client_bytes": self.client_bytes,
            "provider_metered": self.provider_metered,
            "round_bytes": self.round_bytes,
            "session_error": self.session_error,
        }


def judge(m: Measurements, t: Thresholds) -> dict[str, Verdict]:
    """The verdict for every kind in KINDS (see the module docstring)."""
    verdicts = {kind: Verdict.UNKNOWN for kind in KINDS}
    tried = m.session_error is not None or bool(m.probes)
    if tried:
        verdicts["unreachable"] = Verdict.PASS if m.availability >= t.min_availability else Verdict.FAIL
    if m.connect_seconds:
        slow = statistics.median(m.connect_seconds) > t.max_connect_seconds
        verdicts["latency"] = Verdict.FAIL if slow else Verdict.PASS
    if m.throughput:
        verdicts["throughput"] = Verdict.FAIL if statistics.median(m.throughput) < t.min_throughput else Verdict.PASS
    if m.provider_metered is not None:
        base = m.client_bytes if m.round_bytes is None else m.round_bytes
        excess = m.provider_metered - m.client_bytes
        verdicts["metering"] = Verdict.FAIL if excess > base * t.metering_tolerance + t.metering_slack else Verdict.PASS
    return verdicts


def _signers_by_cid(valid: Iterable[Attestation]) -> dict[str, dict[str, Attestation]]:
    """CID -> (lower-case verifier -> its first attestation); one vote per verifier per CID."""
    by_cid: dict[str, dict[str, Attestation]] = {}
    for a in valid:
        by_cid.setdefault(a.evidence_cid, {}).setdefault(a.verifier.lower(), a)
    return by_cid


def choose_cid(own_cid: str, valid: Sequence[Attestation]) -> str:
    """The evidence CID to sign for one (provider, epoch, kind), given the valid attestations already
    posted for it: most distinct signers, then the smallest CID; `own_cid` when none are posted."""
    by_cid = _signers_by_cid(valid)
    if not by_cid:
        return own_cid
    return min(by_cid, key=lambda cid: (-len(by_cid[cid]), cid))


def quorum_signatures(
    valid: Sequence[Attestation], cid: str, quorum: int, limit: int | None = None
) -> list[Attestation] | None:
    """Attestations of distinct verifiers over `cid` (sorted by verifier): `quorum` of them, or every one up
    to `limit` when given (a dispute with more accusers than the quorum survives a colluder being struck);
    None if fewer than `quorum`."""
    signers = _signers_by_cid(valid).get(cid, {})
    if len(signers) < quorum:
        return None
    return [signers[v] for v in sorted(signers)][: max(quorum, limit or quorum)]


def choose_target(
    own_epoch: int, own_cid: str, posted: Mapping[int, Sequence[Attestation]], adopt_epochs: int = 1
) -> tuple[int, str]:
    """The (epoch, evidence CID) to sign for a failure of one (provider, kind) seen in `own_epoch`.

    `posted` maps epochs to the valid attestations the full node holds for them (groups already
    disputed left out by the caller). Epochs from ``own_epoch - adopt_epochs`` to `own_epoch` are
    candidates; the one whose best CID has the most distinct signers wins, ties to the earlier epoch;
    with nothing posted, (own_epoch, own_cid).
    """
    best: tuple[int, int, str] | None = None  # (-signers, epoch, cid)
    for epoch in range(max(0, own_epoch - adopt_epochs), own_epoch + 1):
        valid = posted.get(epoch, ())
        if not valid:
            continue
        cid = choose_cid(own_cid, valid)
        signers = len(_signers_by_cid(valid)[cid])
        if best is None or (-signers, epoch) < best[:2]:
            best = (-signers, epoch, cid)
    if best is None:
        return own_epoch, own_cid
    return best[1], best[2]
