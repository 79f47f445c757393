"""flownet.core.verdicts: judging probe results and choosing the evidence CID verifiers converge on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flownet.core.verdicts import (
    Attestation,
    Measurements,
    Thresholds,
    Verdict,
    choose_cid,
    choose_target,
    judge,
    quorum_signatures,
)

T = Thresholds(max_connect_seconds=0.5, min_throughput=1000.0, min_availability=0.75, metering_tolerance=0.02)
P = "0x" + "11" * 20
PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


def att(cid: str, verifier: str, epoch: int = 5, kind: int = 3) -> Attestation:
    return Attestation(P, epoch, kind, cid, verifier, b"\x01" * 65)


def test_all_pass() -> None:
    m = Measurements((0.1, 0.2, 0.3), (True, True, True, True), (2000.0, 3000.0), 10_000, 10_000)
    assert judge(m, T) == {"unreachable": PASS, "latency": PASS, "throughput": PASS, "metering": PASS}


@pytest.mark.parametrize(
    ("m", "kind", "verdict"),
    [
        # availability 3/4 = 0.75 passes, 2/4 fails
        (Measurements(probes=(True, True, True, False)), "unreachable", PASS),
        (Measurements(probes=(True, False, True, False)), "unreachable", FAIL),
        # median latency: one slow outlier does not fail it, a slow majority does
        (Measurements(connect_seconds=(0.1, 0.2, 9.0)), "latency", PASS),
        (Measurements(connect_seconds=(0.1, 0.6, 0.9)), "latency", FAIL),
        (Measurements(connect_seconds=(0.5,)), "latency", PASS),
        (Measurements(throughput=(999.0, 999.9)), "throughput", FAIL),
        (Measurements(throughput=(1000.0,)), "throughput", PASS),
        # metering: 2 % plus 4096 bytes of slack over the client's count are tolerated
        (Measurements(client_bytes=100_000, provider_metered=102_000 + 4096), "metering", PASS),
        (Measurements(client_bytes=100_000, provider_metered=102_000 + 4097), "metering", FAIL),
        (
            Measurements(client_bytes=100_000, provider_metered=50_000),
            "metering",
            PASS,
        ),  # under-metering hurts nobody but the provider
        (Measurements(client_bytes=100_000, provider_metered=None), "metering", UNKNOWN),
        # on a long-used order the tolerance scales with this round's bytes, not the order's total
        (Measurements(client_bytes=10**9, provider_metered=10**9 + 100_000, round_bytes=100_000), "metering", FAIL),
        (Measurements(client_bytes=10**9, provider_metered=10**9 + 6_000, round_bytes=100_000), "metering", PASS),
    ],
)
def test_each_kind(m: Measurements, kind: str, verdict: Verdict) -> None:
    assert judge(m, T)[kind] is verdict


def test_no_session_is_unreachable_and_nothing_else() -> None:
    m = Measurements(session_error="cannot reach the provider")
    assert m.availability == 0.0
    assert judge(m, T) == {"unreachable": FAIL, "latency": UNKNOWN, "throughput": UNKNOWN, "metering": UNKNOWN}
    assert judge(Measurements(), T) == {k: UNKNOWN for k in ("unreachable", "latency", "throughput", "metering")}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_connect_seconds": 0},
        {"min_throughput": -1},
        {"min_availability": 1.5},
        {"metering_tolerance": -0.1},
    ],
)
def test_bad_thresholds(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Thresholds(**kwargs)  # type: ignore[arg-type]


def test_choose_cid() -> None:
    assert choose_cid("mine", []) == "mine"
    assert choose_cid("mine", [att("bafyb", "0xa")]) == "bafyb"  # adopt the one already posted
    # most distinct signers wins; a verifier signing twice counts once
    posted = [att("bafya", "0xa"), att("bafya", "0xA"), att("bafyb", "0xb"), att("bafyb", "0xc")]
    assert choose_cid("mine", posted) == "bafyb"
    # ties go to the smallest CID
    assert choose_cid("mine", [att("bafyz", "0xa"), att("bafyc", "0xb")]) == "bafyc"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["bafy1", "bafy2", "bafy3"]), st.sampled_from(["0xa", "0xb", "0xc", "0xd"]))),
    st.randoms(use_true_random=False),
)
def test_choose_cid_ignores_order(pairs: list[tuple[str, str]], rng: object) -> None:
    """Every verifier seeing the same set, in any order, picks the same CID."""
    posted = [att(c, v) for c, v in pairs]
    shuffled = list(posted)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert choose_cid("own", posted) == choose_cid("other", shuffled) or not posted


def test_quorum_signatures() -> None:
    posted = [att("bafya", "0xb"), att("bafya", "0xa"), att("bafya", "0xB"), att("bafyb", "0xc")]
    assert quorum_signatures(posted, "bafya", 3) is None
    chosen = quorum_signatures(posted, "bafya", 2)
    assert chosen is not None and [a.verifier for a in chosen] == ["0xa", "0xb"]
    assert quorum_signatures(posted, "bafyb", 1) == [posted[3]]
    assert quorum_signatures(posted, "bafyq", 1) is None
    everyone = quorum_signatures(posted, "bafya", 1, limit=16)  # every distinct signer, not just the quorum
    assert everyone is not None and [a.verifier for a in everyone] == ["0xa", "0xb"]
    assert [a.verifier for a in quorum_signatures(posted, "bafya", 1, limit=1) or []] == ["0xa"]


def test_choose_target() -> None:
    assert choose_target(7, "mine", {}) == (7, "mine")
    assert choose_target(7, "mine", {7: [att("bafyx", "0xa", 7)]}) == (7, "bafyx")
    # a group from the previous epoch is joined when nothing is posted for this one
    assert choose_target(7, "mine", {6: [att("bafyp", "0xa", 6)]}) == (6, "bafyp")
    # the group with more signers wins; on a tie the earlier epoch
    both = {6: [att("bafyp", "0xa", 6)], 7: [att("bafyq", "0xb", 7), att("bafyq", "0xc", 7)]}
    assert choose_target(7, "mine", both) == (7, "bafyq")
    tie = {6: [att("bafyp", "0xa", 6)], 7: [att("bafyq", "0xb", 7)]}
    assert choose_target(7, "mine", tie) == (6, "bafyp")
    # outside the adoption window: ignored
    assert choose_target(7, "mine", {5: [att("bafyo", "0xa", 5)]}) == (7, "mine")
    assert choose_target(7, "mine", {6: [att("bafyp", "0xa", 6)]}, adopt_epochs=0) == (7, "mine")


def test_attestation_json_round_trip() -> None:
    a = Attestation(P, 12, 2, "bafyx", "0x" + "22" * 20, bytes(range(65)))
    assert Attestation.from_json(a.to_json()) == a
    for bad in ({"provider": P}, {**a.to_json(), "signature": "abcd"}, {**a.to_json(), "epoch": True}):
        with pytest.raises(ValueError):
            Attestation.from_json(bad)
