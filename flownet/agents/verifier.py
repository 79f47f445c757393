"""The verifier agent: probe providers as a client, attest failures, open and execute disputes.

A thin loop over flownet.core.verdicts; all I/O sits behind three seams tests replace with fakes:
`FullNodeApi` (the full node's HTTP API), `ChainPort` (SlashingManager and Staking) and a prober
(an async callable from a provider's API row to its `Measurements`; `TunnelProber` in
flownet/agents/verifier_io.py probes through a real in-process ClientTunnel).

Each round, for every provider the full node lists (or those asked for):

1. probe it (`Measurements`) in the current epoch and `judge` each kind. A `VouchingProber` lets the
   verifier judge the round while its tunnel is still up: when no kind failed and the round carried
   bytes, the verifier vouches for (provider, epoch) by sending the provider a ServiceProof for that
   epoch (see "Vouching" below);
2. store an evidence document (provider, epoch, measurements, verdicts, verifier, timestamp) in the
   blob store: its CID is this verifier's own evidence;
3. for each FAILED kind: read the attestations the full node holds for (provider, kind) in this
   epoch and the previous `adopt_epochs`, keep those whose signature recovers to a staked verifier,
   pick the (epoch, CID) to sign with `choose_target` (the most-signed group; see
   flownet.core.verdicts), check adopted evidence when it can be fetched, sign
   Attestation(provider, epoch, kind, CID) and POST it;
4. once `quorum` distinct verifiers signed one (provider, epoch, kind, CID) and no dispute is open
   for (provider, epoch), open the dispute (whoever gets there first; the others find it open);
5. read the provider's equivocations the full node keeps (``GET /providers/{address}/equivocations``:
   two signed heartbeats of one epoch naming different endpoints) and submit each proof, also when
   the probe failed. A proof the chain refuses for a reason that may pass (the slash cap of the
   period reached, an RPC error, a revert it cannot classify) is tried again in a later round, after
   1, 2, 4, ... rounds (at most `EQUIVOCATION_MAX_BACKOFF`); only a final answer ends it: the epoch is
   slashed, past the statute of limitations, or the chain reads the pair as no equivocation (a provider
   with nothing at stake is tried again: it may stake again within the statute).

Every round also re-checks the groups it signed (another verifier may have completed the quorum
since) and executes the disputes it knows of whose challenge window has passed.

**Vouching.** A dispute is rebutted with ServiceProofs signed by the accusing verifiers themselves
(each strikes its signer and forfeits its bond), so a verifier's ServiceProof for (provider, epoch)
means "I judged this provider's service in this epoch acceptable". The verifier therefore never
holds both words about one (provider, epoch): it records each vouch and each attested epoch in its
`VouchPort` (durable: `flownet.agents.verifier_io.VouchLog` under FLOWNET_HOME) *before* sending the
proof or signing the attestation, vouches only for an epoch it attested no failure in, and signs no
attestation (its own, a co-signature or an adopted earlier group) for an epoch it vouched for. The
epoch vouched for is the one the round's attestations would name: `current_epoch()` before the probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from flownet.core import safejson
from flownet.core.heartbeat import SignedHeartbeat
from flownet.core.verdicts import (
    KINDS,
    Attestation,
    Measurements,
    Thresholds,
    Verdict,
    choose_target,
    judge,
    quorum_signatures,
)
from flownet.errors import FlowNetError, TransactionFailed

__all__ = [
    "ChainPort",
    "Decide",
    "Equivocation",
    "FullNodeApi",
    "MemoryVouches",
    "Verifier",
    "VerifierSettings",
    "VouchPort",
    "VouchingProber",
    "evidence_document",
]

#: The largest evidence document read from the blob store (ours are a few KiB).
EVIDENCE_MAX_BYTES = 256 * 1024
#: ISlashingManager.MAX_ATTESTATIONS: the most accusers one dispute takes.
MAX_ACCUSERS = 16

log = logging.getLogger("flownet.verifier")

KIND_NAMES = {v: k for k, v in KINDS.items()}
DISPUTE_OPEN = 1
#: slashEquivocation reverts after which the (provider, epoch) can never be slashed for equivocation.
#: SlashingNothingToSlash is not one of them: a provider that unbonded everything may stake again within
#: the statute of limitations, and its equivocation is then slashable; the backoff keeps retries cheap.
FINAL_EPOCH_ERRORS = frozenset({"SlashingEpochAlreadySlashed", "SlashingEpochExpired", "SlashingNotProvider"})
#: Reverts saying the chain reads this pair of heartbeats as no proof at all (it never will be one).
FINAL_PAIR_ERRORS = frozenset(
    {
        "SlashingNotEquivocation",
        "SlashingHeartbeatMismatch",
        "SlashingWrongSigner",
        "SlashingInvalidSignature",
        "SlashingInvalidSignatureLength",
        "SlashingInvalidSignatureS",
        "SlashingInvalidSignatureV",
    }
)
EQUIVOCATION_MAX_BACKOFF = 8  # rounds between attempts at a proof that keeps failing for transient reasons


@dataclass(frozen=True)
class Equivocation:
    """Two signed heartbeats of one provider and epoch naming different endpoints, as the full node keeps
    them; `slashed`: the full node has indexed a slash of (provider, epoch)."""

    a: SignedHeartbeat
    b: SignedHeartbeat
    slashed: bool = False

    @property
    def provider(self) -> str:
        return self.a.heartbeat.provider

    @property
    def epoch(self) -> int:
        return self.a.heartbeat.epoch

    @classmethod
    def from_json(cls, data: Any) -> Equivocation:
        """An item of ``GET /providers/{address}/equivocations``; ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"an equivocation must be a JSON object, not {data!r}")
        try:
            a, b = SignedHeartbeat.from_json(data.get("a")), SignedHeartbeat.from_json(data.get("b"))
        except FlowNetError as exc:
            raise ValueError(f"invalid heartbeat in equivocation: {exc}") from None
        ha, hb = a.heartbeat, b.heartbeat
        if (ha.provider, ha.epoch) != (hb.provider, hb.epoch) or ha.endpoint_hash == hb.endpoint_hash:
            raise ValueError(
                f"heartbeats of {ha.provider} epoch {ha.epoch} and {hb.provider} epoch {hb.epoch} naming "
                f"0x{ha.endpoint_hash.hex()} and 0x{hb.endpoint_hash.hex()} are no equivocation"
            )
        return cls(a, b, bool(data.get("slashed", False)))


class FullNodeApi(Protocol):
    def providers(self) -> list[dict[str, Any]]: ...
    def provider(self, address: str) -> dict[str, Any]: ...
    def equivocations(self, provider: str) -> list[Equivocation]: ...
    def post_attestation(self, attestation: Attestation) -> None: ...
    def attestations(self, provider: str, epoch: int, kind: int) -> list[Attestation]: ...


class ChainPort(Protocol):
    address: str

    def current_epoch(self) -> int: ...
    def quorum(self) -> int: ...
    def chain_time(self) -> int: ...
    def sign_attestation(self, provider: str, epoch: int, kind: int, evidence_cid: str) -> bytes: ...
    def attestation_signer(self, attestation: Attestation) -> str | None: ...
    def is_staked_verifier(self, address: str) -> bool: ...
    def open_dispute_of(self, provider: str, epoch: int) -> int: ...
    def is_epoch_slashed(self, provider: str, epoch: int) -> bool: ...
    def open_dispute(self, provider: str, epoch: int, kind: int, evidence_cid: str, signatures: list[bytes]) -> int: ...
    def dispute_state(self, dispute_id: int) -> tuple[int, int]: ...
    def open_disputes(self) -> list[int]: ...
    def execute(self, dispute_id: int) -> None: ...
    def slash_equivocation(self, a: SignedHeartbeat, b: SignedHeartbeat, evidence_cid: str) -> None: ...


class BlobPort(Protocol):
    def put(self, data: bytes) -> str: ...
    def get(self, cid: str) -> bytes: ...


Prober = Callable[[dict[str, Any]], Awaitable[Measurements]]

#: Called by a VouchingProber with a round's measurements while its tunnel is still up: the
#: (epoch, bytes served) to sign a ServiceProof for, already recorded as vouched, or None.
Decide = Callable[[Measurements], tuple[int, int] | None]


@runtime_checkable
class VouchingProber(Protocol):
    """A prober that can send the provider a ServiceProof before its tunnel closes (`TunnelProber`)."""

    def __call__(self, row: dict[str, Any]) -> Awaitable[Measurements]: ...
    def probe_and_vouch(self, row: dict[str, Any], decide: Decide) -> Awaitable[Measurements]: ...


class VouchPort(Protocol):
    """What this verifier said about each (provider, epoch): vouched for it, or attested a failure in it."""

    def vouched(self, provider: str, epoch: int) -> bool: ...
    def record_vouch(self, provider: str, epoch: int, bytes_served: int) -> None: ...
    def attested(self, provider: str, epoch: int) -> bool: ...
    def record_attestation(self, provider: str, epoch: int) -> None: ...


class MemoryVouches:
    """A VouchPort in memory (tests; a verifier that must survive restarts uses `VouchLog`)."""

    def __init__(self) -> None:
        self.vouches: dict[tuple[str, int], int] = {}
        self.attestations: set[tuple[str, int]] = set()

    def vouched(self, provider: str, epoch: int) -> bool:
        return (provider.lower(), epoch) in self.vouches

    def record_vouch(self, provider: str, epoch: int, bytes_served: int) -> None:
        key = (provider.lower(), epoch)
        self.vouches[key] = max(self.vouches.get(key, 0), bytes_served)

    def attested(self, provider: str, epoch: int) -> bool:
        return (provider.lower(), epoch) in self.attestations

    def record_attestation(self, provider: str, epoch: int) -> None:
        self.attestations.add((provider.lower(), epoch))


@dataclass(frozen=True)
class VerifierSettings:
    thresholds: Thresholds = field(default_factory=Thresholds)
    adopt_epochs: int = 1
    providers: tuple[str, ...] = ()  # only these (lower-case); empty: every provider the full node lists
    forget_epochs: int = 20  # stop re-checking a signed group this many epochs later
    watch_equivocation: bool = True
    max_failures: int = 5  # consecutive failed rounds (full node or chain down) before giving up


def _provider_trouble(row: dict[str, Any], exc: Exception) -> None:
    if isinstance(exc, FlowNetError):
        log.warning("provider %s: %s", row.get("address"), exc)
    else:
        log.warning("provider %s: unexpected %s: %s", row.get("address"), type(exc).__name__, exc)


def evidence_document(
    provider: str, epoch: int, m: Measurements, verdicts: dict[str, Verdict], verifier: str, t: Thresholds, now: float
) -> bytes:
    """The evidence JSON a verifier stores (canonical: sorted keys, no spaces)."""
    doc = {
        "type": "flownet/verifier-evidence",
        "version": 1,
        "provider": provider,
        "epoch": epoch,
        "verifier": verifier,
        "timestamp": now,
        "measurements": m.to_json(),
        "thresholds": {
            "max_connect_seconds": t.max_connect_seconds,
            "min_throughput": t.min_throughput,
            "min_availability": t.min_availability,
            "metering_tolerance": t.metering_tolerance,
            "metering_slack": t.metering_slack,
        },
        "verdicts": {k: v.value for k, v in verdicts.items()},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class Verifier:
    """One verifier's state across rounds: the groups it signed and the disputes it follows."""

    def __init__(
        self,
        chain: ChainPort,
        fullnode: FullNodeApi,
        store: BlobPort,
        prober: Prober,
        settings: VerifierSettings | None = None,
        clock: Callable[[], float] = time.time,
        vouches: VouchPort | None = None,
    ) -> None:
        self.chain = chain
        self.fullnode = fullnode
        self.store = store
        self.prober = prober
        self.settings = settings or VerifierSettings()
        self.clock = clock
        self.vouches: VouchPort = vouches if vouches is not None else MemoryVouches()
        self.signed: dict[tuple[str, int, int], str] = {}  # (provider, epoch, kind) -> CID this verifier signed
        self.disputes: set[int] = set()  # disputes to execute once their window passes
        self.done: set[int] = set()
        self.equivocations: set[tuple[str, int]] = set()  # (provider, epoch) settled: slashed or never slashable
        self.bad_pairs: set[tuple[str, int, bytes, bytes]] = set()  # pairs the chain reads as no proof
        self.equivocation_retry: dict[tuple[str, int], tuple[int, int]] = {}  # -> (failures, next round to try)
        self.rounds = 0
        self.stats = {"probes": 0, "attestations": 0, "disputes_opened": 0, "executed": 0, "equivocations": 0}
        self.stats["vouches"] = 0  # epochs vouched for with a ServiceProof

    # ------------------------------------------------------------------ the loop

    async def run(self, rounds: int | None, duration: float | None, interval: float, stop: asyncio.Event) -> None:
        """Rounds until `rounds` are done, `duration` seconds passed or `stop` is set.

        A round that fails as a whole (the full node or the chain unreachable) is retried after a
        growing pause; `max_failures` failures in a row end the run with the last error.
        """
        start = self.clock()
        done = 0
        failures = 0
        try:  # disputes opened before this run (by us or anyone) are executed once due, too
            known = self.chain.open_disputes()
        except Exception as exc:
            log.warning("could not list open disputes: %s: %s", type(exc).__name__, exc)
        else:
            if known:
                log.info("following %d open dispute(s): %s", len(known), ", ".join(map(str, known)))
            self.disputes.update(known)
        while not stop.is_set():
            try:
                await self.round()
            except Exception as exc:
                failures += 1
                log.warning("round failed (%d in a row): %s: %s", failures, type(exc).__name__, exc)
                if failures >= self.settings.max_failures:
                    raise
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), min(60.0, max(interval, 1.0) * 2**failures))
                continue
            failures = 0
            done += 1
            if rounds is not None and done >= rounds:
                break
            if duration is not None and self.clock() - start >= duration:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        log.info("verifier stopped after %d round(s): %s", done, self.stats)

    async def round(self) -> None:
        self.rounds += 1
        rows = self.fullnode.providers()
        wanted = self.settings.providers
        rows = [r for r in rows if not wanted or str(r.get("address", "")).lower() in wanted]
        log.info("round: %d provider(s) to probe", len(rows))
        for row in rows:
            try:
                await self.check_provider(row)
            except Exception as exc:  # one provider's trouble (a web3 or HTTP error) must not stop the others
                _provider_trouble(row, exc)
            if self.settings.watch_equivocation:  # also for a provider that could not be probed
                try:
                    self.watch_equivocation(str(row["address"]))
                except Exception as exc:
                    _provider_trouble(row, exc)
        self.recheck_signed()
        self.execute_due()

    # ------------------------------------------------------------------ one provider

    async def check_provider(self, row: dict[str, Any]) -> dict[str, Verdict]:
        provider = str(row["address"])
        epoch = self.chain.current_epoch()
        log.info("probing provider %s (epoch %d)", provider, epoch)
        if isinstance(self.prober, VouchingProber):
            m = await self.prober.probe_and_vouch(row, lambda m: self.vouch_decision(provider, epoch, m))
        else:
            m = await self.prober(row)
        self.stats["probes"] += 1
        t = self.settings.thresholds
        verdicts = judge(m, t)
        log.info(
            "provider %s epoch %d: %s",
            provider,
            epoch,
            ", ".join(f"{k} {v.value}" for k, v in verdicts.items()),
        )
        failed = [k for k, v in verdicts.items() if v is Verdict.FAIL]
        if failed:
            doc = evidence_document(provider, epoch, m, verdicts, self.chain.address, t, self.clock())
            own_cid = self.store.put(doc)
            log.info("provider %s: evidence stored as %s", provider, own_cid)
            for name in failed:
                self.attest(provider, epoch, KINDS[name], own_cid)
        return verdicts

    def vouch_decision(self, provider: str, epoch: int, m: Measurements) -> tuple[int, int] | None:
        """(epoch, bytes) to vouch for after a probe round of `provider` in `epoch`, recorded before it is
        returned (the prober then sends the ServiceProof); None when a kind failed, the round carried no
        bytes, or this verifier attested a failure of the provider in that epoch."""
        verdicts = judge(m, self.settings.thresholds)
        if any(v is Verdict.FAIL for v in verdicts.values()):
            return None
        carried = m.client_bytes if m.round_bytes is None else m.round_bytes
        if carried <= 0:
            return None
        if self.vouches.attested(provider, epoch):
            log.info("provider %s passed in epoch %d, but I attested a failure in it: not vouching", provider, epoch)
            return None
        self.vouches.record_vouch(provider, epoch, carried)
        self.stats["vouches"] += 1
        log.info("vouching for provider %s in epoch %d: %d bytes, no kind failed", provider, epoch, carried)
        return epoch, carried

    def valid_attestations(self, provider: str, epoch: int, kind: int) -> list[Attestation]:
        """The full node's attestations for (provider, epoch, kind) signed by the staked verifier they name."""
        valid = []
        for a in self.fullnode.attestations(provider, epoch, kind):
            if a.provider.lower() != provider.lower() or a.epoch != epoch or a.kind != kind:
                continue
            signer = self.chain.attestation_signer(a)
            if signer is None or signer.lower() != a.verifier.lower():
                log.info("ignoring an attestation whose signature is not %s's", a.verifier)
                continue
            if not self.chain.is_staked_verifier(a.verifier):
                log.info("ignoring an attestation of %s, not a staked verifier", a.verifier)
                continue
            valid.append(a)
        return valid

    def attest(self, provider: str, epoch: int, kind: int, own_cid: str) -> None:
        """Sign and post the attestation for a failure of `kind` this verifier saw in `epoch`."""
        name = KIND_NAMES[kind]
        posted: dict[int, list[Attestation]] = {}
        for e in range(max(0, epoch - self.settings.adopt_epochs), epoch + 1):
            if self.vouches.vouched(provider, e):
                continue  # I vouched for this epoch with a service proof: never attest it
            if self.chain.open_dispute_of(provider, e) or self.chain.is_epoch_slashed(provider, e):
                continue  # already disputed or slashed: nothing to add
            posted[e] = self.valid_attestations(provider, e, kind)
        target_epoch, cid = choose_target(epoch, own_cid, posted, self.settings.adopt_epochs)
        if (target_epoch, cid) != (epoch, own_cid):
            if not self.evidence_agrees(cid, provider, target_epoch, name):
                target_epoch, cid = epoch, own_cid
            else:
                log.info(
                    "provider %s %s: adopting evidence %s of epoch %d (signed by others) after failing it myself",
                    provider,
                    name,
                    cid,
                    target_epoch,
                )
        if self.vouches.vouched(provider, target_epoch):
            log.info(
                "provider %s failed %s in epoch %d, which I vouched for earlier: no attestation",
                provider,
                name,
                target_epoch,
            )
            return
        if target_epoch == epoch and (
            self.chain.open_dispute_of(provider, epoch) or self.chain.is_epoch_slashed(provider, epoch)
        ):
            log.info("provider %s epoch %d is already disputed or slashed: no attestation", provider, epoch)
            self.try_dispute(provider, epoch, kind, cid)  # follows the open dispute, to execute it
            return
        self.sign_and_post(provider, target_epoch, kind, cid)
        self.try_dispute(provider, target_epoch, kind, cid)

    def evidence_agrees(self, cid: str, provider: str, epoch: int, kind_name: str) -> bool:
        """False if the evidence at `cid` can be read and contradicts the group (wrong provider or epoch,
        or that kind not failed); True if it agrees or cannot be fetched (our own probe confirmed it)."""
        try:
            doc = safejson.loads(self.store.get(cid), what=f"evidence {cid}", max_bytes=EVIDENCE_MAX_BYTES)
        except Exception as exc:  # unreachable store, unknown CID, not JSON: rely on our own measurement
            log.info("evidence %s cannot be read here (%s); relying on my own probe", cid, exc)
            return True
        ok = (
            isinstance(doc, dict)
            and str(doc.get("provider", "")).lower() == provider.lower()
            and doc.get("epoch") == epoch
            and isinstance(doc.get("verdicts"), dict)
            and doc["verdicts"].get(kind_name) == Verdict.FAIL.value
        )
        if not ok:
            log.warning(
                "evidence %s does not show %s failing %s in epoch %d: not adopting it", cid, provider, kind_name, epoch
            )
        return ok

    def sign_and_post(self, provider: str, epoch: int, kind: int, cid: str) -> None:
        key = (provider, epoch, kind)
        if self.signed.get(key) == cid:
            return
        if self.vouches.vouched(provider, epoch):  # every attestation passes here: the last guard
            log.warning("not attesting provider %s epoch %d: I vouched for it with a service proof", provider, epoch)
            return
        self.vouches.record_attestation(provider, epoch)  # before signing: no vouch for this epoch from now on
        signature = self.chain.sign_attestation(provider, epoch, kind, cid)
        attestation = Attestation(provider, epoch, kind, cid, self.chain.address, signature)
        self.fullnode.post_attestation(attestation)
        self.signed[key] = cid
        self.stats["attestations"] += 1
        log.info("attested: provider %s failed %s in epoch %d (evidence %s)", provider, KIND_NAMES[kind], epoch, cid)

    def try_dispute(self, provider: str, epoch: int, kind: int, cid: str) -> int | None:
        """Open the dispute if `cid` has a quorum and none is open for (provider, epoch); its id if open."""
        existing = self.chain.open_dispute_of(provider, epoch)
        if existing:
            if existing not in self.disputes and existing not in self.done:
                log.info("dispute %d against %s epoch %d is open (by another verifier)", existing, provider, epoch)
                self.disputes.add(existing)
            return existing
        if self.chain.is_epoch_slashed(provider, epoch):
            return None
        quorum = self.chain.quorum()
        valid = self.valid_attestations(provider, epoch, kind)
        # every signer, not just the quorum: a provider that strikes one colluding accuser then still faces
        # the others (the contract takes at most 16)
        chosen = quorum_signatures(valid, cid, quorum, limit=MAX_ACCUSERS)
        if chosen is None:
            have = len({a.verifier.lower() for a in valid if a.evidence_cid == cid})
            log.info(
                "provider %s %s epoch %d: %d of %d signatures on %s; waiting",
                provider,
                KIND_NAMES[kind],
                epoch,
                have,
                quorum,
                cid,
            )
            return None
        try:
            try:
                dispute_id = self.chain.open_dispute(provider, epoch, kind, cid, [a.signature for a in chosen])
            except FlowNetError as exc:
                if len(chosen) <= quorum or self.chain.open_dispute_of(provider, epoch):
                    raise
                # one extra signer may be unable to bond (stake held, too many open disputes): the quorum alone
                log.info("opening with all %d signers failed (%s); trying the first %d", len(chosen), exc, quorum)
                chosen = chosen[:quorum]
                dispute_id = self.chain.open_dispute(provider, epoch, kind, cid, [a.signature for a in chosen])
        except FlowNetError as exc:
            existing = self.chain.open_dispute_of(provider, epoch)
            if existing:
                log.info("dispute %d against %s epoch %d was opened by another verifier", existing, provider, epoch)
                self.disputes.add(existing)
                return existing
            log.warning("could not open a dispute against %s epoch %d: %s", provider, epoch, exc)
            return None
        self.disputes.add(dispute_id)
        self.stats["disputes_opened"] += 1
        log.info(
            "DISPUTE %d opened against %s: %s in epoch %d, evidence %s, verifiers %s",
            dispute_id,
            provider,
            KIND_NAMES[kind],
            epoch,
            cid,
            ", ".join(a.verifier for a in chosen),
        )
        return dispute_id

    def recheck_signed(self) -> None:
        """Groups this verifier signed may have reached quorum since (another verifier posted)."""
        if not self.signed:
            return
        current = self.chain.current_epoch()
        for (provider, epoch, kind), cid in list(self.signed.items()):
            if current - epoch > self.settings.forget_epochs:
                del self.signed[(provider, epoch, kind)]
                continue
            if self.chain.open_dispute_of(provider, epoch) or self.chain.is_epoch_slashed(provider, epoch):
                self.try_dispute(provider, epoch, kind, cid)  # records an open dispute to execute
                continue
            if self.vouches.vouched(provider, epoch):  # cannot happen (no vouch after an attestation); be sure
                continue
            # convergence: if others gathered more signatures on another CID of this group (whose failure
            # this verifier confirmed when it signed), join them
            valid = self.valid_attestations(provider, epoch, kind)
            target_epoch, best = choose_target(epoch, cid, {epoch: valid}, 0)
            if best != cid and self.evidence_agrees(best, provider, epoch, KIND_NAMES[kind]):
                log.info("provider %s %s epoch %d: converging on evidence %s", provider, KIND_NAMES[kind], epoch, best)
                self.sign_and_post(provider, target_epoch, kind, best)
                cid = best
            self.try_dispute(provider, epoch, kind, cid)

    def execute_due(self) -> None:
        now = self.chain.chain_time()
        for dispute_id in sorted(self.disputes):
            status, challenge_ends = self.chain.dispute_state(dispute_id)
            if status != DISPUTE_OPEN:
                log.info("dispute %d is no longer open (status %d)", dispute_id, status)
                self.disputes.discard(dispute_id)
                self.done.add(dispute_id)
                continue
            if now < challenge_ends:
                log.info("dispute %d: challenge window ends in %d s", dispute_id, challenge_ends - now)
                continue
            try:
                self.chain.execute(dispute_id)
            except FlowNetError as exc:
                status, _ = self.chain.dispute_state(dispute_id)
                if status == DISPUTE_OPEN:
                    log.warning("could not execute dispute %d: %s", dispute_id, exc)
                    continue
                log.info("dispute %d was settled by someone else", dispute_id)
            else:
                self.stats["executed"] += 1
                log.info("EXECUTED dispute %d: the provider was slashed", dispute_id)
            self.disputes.discard(dispute_id)
            self.done.add(dispute_id)

    # ------------------------------------------------------------------ equivocation

    def watch_equivocation(self, provider: str) -> None:
        """Submit a proof for every equivocation of `provider` the full node keeps, unless settled; a proof
        that fails for a transient reason is retried in a later round."""
        for item in self.fullnode.equivocations(provider):
            if item.provider.lower() != provider.lower():
                log.warning("the full node answered an equivocation of %s for %s: ignored", item.provider, provider)
                continue
            key = (item.provider, item.epoch)
            pair = (*key, item.a.signature, item.b.signature)
            if key in self.equivocations or pair in self.bad_pairs:
                continue
            failures, next_round = self.equivocation_retry.get(key, (0, 0))
            if self.rounds < next_round:
                continue
            try:
                self.prove_equivocation(item)
            except TransactionFailed as exc:
                if exc.error in FINAL_EPOCH_ERRORS:
                    log.info("equivocation of %s in epoch %d cannot be slashed: %s", item.provider, item.epoch, exc)
                    self.settle(key)
                elif exc.error in FINAL_PAIR_ERRORS:
                    log.warning("the chain reads the pair for %s epoch %d as no proof: %s", *key, exc)
                    self.bad_pairs.add(pair)
                else:
                    self.retry_later(key, failures, exc)
            except Exception as exc:  # RPC, blob store: try again later
                self.retry_later(key, failures, exc)
            else:
                self.settle(key)

    def prove_equivocation(self, item: Equivocation) -> None:
        """Submit `item` with `slashEquivocation` unless its epoch is already slashed."""
        provider, epoch = item.provider, item.epoch
        if self.chain.is_epoch_slashed(provider, epoch):
            log.info("provider %s epoch %d already slashed", provider, epoch)
            return
        doc = {
            "type": "flownet/equivocation-evidence",
            "version": 1,
            "provider": provider,
            "epoch": epoch,
            "reporter": self.chain.address,
            "timestamp": self.clock(),
            "heartbeats": [item.a.to_json(), item.b.to_json()],
        }
        cid = self.store.put(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
        self.chain.slash_equivocation(item.a, item.b, cid)
        self.stats["equivocations"] += 1
        log.info("SLASHED %s for equivocation in epoch %d (evidence %s)", provider, epoch, cid)

    def settle(self, key: tuple[str, int]) -> None:
        self.equivocations.add(key)
        self.equivocation_retry.pop(key, None)

    def retry_later(self, key: tuple[str, int], failures: int, exc: Exception) -> None:
        wait = min(2**failures, EQUIVOCATION_MAX_BACKOFF)
        self.equivocation_retry[key] = (failures + 1, self.rounds + wait)
        log.warning(
            "equivocation proof against %s epoch %d failed (%s: %s); trying again in %d round(s)",
            *key,
            type(exc).__name__,
            exc,
            wait,
        )
