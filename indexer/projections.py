"""Projections as pure reducers: ``reduce(state, event) -> changes``.

`state` is read-only (``state.get(table, key) -> row | None``); a reducer never performs I/O, so it is
tested with a dict and gives the same answer on a live chain, in a rebuild from raw logs, or after a
reorg. Changes are `Put` (replace a row of a keyed table) and `Append` (add a row to an append-only
table). Token movements become double-entry journal rows between named accounts:

- ``wallet:<address>``: tokens an address holds (FlowToken transfers between outsiders included);
- ``stake:active:<address>`` and ``stake:thawing:<address>``: bonded and thawing stake in Staking;
- ``escrow:<orderId>``: an order's unpaid deposit in the market;
- ``external``: the mint (its balance is minus everything ever minted);
- ``burned``: tokens burned (FlowToken transfers to the zero address: the SlashingManager burns the
  part of a slash it does not pay out, and accusers' penalties on a rebuttal). Kept apart from
  ``external`` so the burned total is one balance and the supply is ``-(external + burned)``.

A slash books three kinds of entries: Staking's ``Slashed`` moves ``stake:active|thawing:<provider>`` to
``wallet:<SlashingManager>``, then the manager's own transfers move its wallet to ``wallet:<reporter>``
(or each verifier) for the reward and to ``burned`` for the rest, so the manager's wallet returns to 0.

So at any block: wallet balances equal ``balanceOf``, the stake accounts sum to Staking's balance
and the escrow accounts to the market's balance; the sum of all accounts is zero.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from indexer.events import Event

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ROLES = {1: "provider", 2: "verifier"}
BURNED = "burned"
DISPUTE_STATUSES = ("open", "rebutted", "executed", "superseded")


def amt(value: int) -> str:
    """An amount as zero-padded decimal text (sorts and compares like the number)."""
    return str(value).zfill(30)


class State(Protocol):
    def get(self, table: str, key: str) -> dict[str, Any] | None: ...


class Put(NamedTuple):
    table: str
    key: str
    row: dict[str, Any]


class Append(NamedTuple):
    table: str
    row: dict[str, Any]


Change = Put | Append
Reducer = Callable[[State, Event, dict[str, str]], list[Change]]


def _entry(ev: Event, seq: int, kind: str, debit: str, credit: str, amount: int) -> Append:
    return Append(
        "journal",
        {
            "block_number": ev.block_number,
            "log_index": ev.log_index,
            "seq": seq,
            "kind": kind,
            "debit": debit,
            "credit": credit,
            "amount": amt(amount),
        },
    )


def _staker(state: State, address: str, block: int) -> dict[str, Any]:
    row = state.get("stakers", address)
    if row is not None:
        return dict(row)
    return {
        "address": address,
        "role": "",
        "active": amt(0),
        "locked": amt(0),
        "thawing": amt(0),
        "thaw_end": 0,
        "price": amt(0),
        "metadata_cid": None,
        "slashed": amt(0),
        "held": amt(0),
        "updated_block": block,
    }


def _put_staker(row: dict[str, Any], block: int) -> Put:
    row["updated_block"] = block
    return Put("stakers", row["address"], row)


# ----------------------------------------------------------------------------------------- Staking


def staked(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    row = _staker(state, a["account"], ev.block_number)
    row["role"] = ROLES.get(a["role"], str(a["role"]))
    row["active"] = amt(a["active"])
    return [
        _put_staker(row, ev.block_number),
        _entry(ev, 0, "stake", f"wallet:{a['account']}", f"stake:active:{a['account']}", a["amount"]),
    ]


def unstake_requested(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    row = _staker(state, a["account"], ev.block_number)
    row.update(active=amt(a["active"]), thawing=amt(a["thawing"]), thaw_end=a["thawEnd"])
    return [
        _put_staker(row, ev.block_number),
        _entry(ev, 0, "thaw", f"stake:active:{a['account']}", f"stake:thawing:{a['account']}", a["amount"]),
    ]


def withdrawn(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    """A withdrawal takes the thawed stake not needed to cover holds; the rest stays thawing with its
    thaw end (Staking.withdraw)."""
    a = ev.args
    row = _staker(state, a["account"], ev.block_number)
    left = int(row["thawing"]) - a["amount"]
    row.update(thawing=amt(left), thaw_end=row["thaw_end"] if left else 0)
    return [
        _put_staker(row, ev.block_number),
        _entry(ev, 0, "withdraw", f"stake:thawing:{a['account']}", f"wallet:{a['account']}", a["amount"]),
    ]


def stake_held(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    """StakeHeld and StakeReleased both carry the new held total (no tokens move)."""
    a = ev.args
    row = _staker(state, a["account"], ev.block_number)
    row["held"] = amt(a["held"])
    return [_put_staker(row, ev.block_number)]


def offer_published(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    row = _staker(state, a["provider"], ev.block_number)
    row.update(price=amt(a["pricePerGiB"]), metadata_cid=a["metadataCid"])
    return [_put_staker(row, ev.block_number)]


def stake_locked(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    row = _staker(state, ev.args["provider"], ev.block_number)
    row["locked"] = amt(ev.args["locked"])
    return [_put_staker(row, ev.block_number)]


def slashed(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    row = _staker(state, a["account"], ev.block_number)
    row.update(
        active=amt(a["active"]),
        thawing=amt(a["thawing"]),
        slashed=amt(int(row["slashed"]) + a["fromActive"] + a["fromThawing"]),
    )
    if a["thawing"] == 0:
        row["thaw_end"] = 0
    changes: list[Change] = [_put_staker(row, ev.block_number)]
    seq = 0
    for source, amount in (("active", a["fromActive"]), ("thawing", a["fromThawing"])):
        if amount:
            changes.append(_entry(ev, seq, "slash", f"stake:{source}:{a['account']}", f"wallet:{a['slasher']}", amount))
            seq += 1
    return changes


# ----------------------------------------------------------------------------------------- Market


def order_opened(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    row = {
        "order_id": a["orderId"],
        "nonce": a["nonce"],
        "client": a["client"],
        "provider": a["provider"],
        "deposit": amt(a["deposit"]),
        "price": amt(a["pricePerGiB"]),
        "expiry": a["expiry"],
        "locked_stake": amt(a["lockedStake"]),
        "paid": amt(0),
        "paid_bytes": amt(0),
        "refunded": amt(0),
        "status": "open",
        "cooperative": None,
        "cancelled": 0,
        "opened_block": ev.block_number,
        "closed_block": None,
    }
    return [
        Put("orders", a["orderId"], row),
        _entry(ev, 0, "escrow", f"wallet:{a['client']}", f"escrow:{a['orderId']}", a["deposit"]),
    ]


def redeemed(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    order = state.get("orders", a["orderId"])
    changes: list[Change] = []
    if order is not None:
        order = dict(order)
        order.update(paid=amt(a["cumulativeAmount"]), paid_bytes=amt(a["cumulativeBytes"]))
        changes.append(Put("orders", a["orderId"], order))
    changes.append(
        Append(
            "receipts",
            {
                "block_number": ev.block_number,
                "log_index": ev.log_index,
                "order_id": a["orderId"],
                "provider": a["provider"],
                "cumulative_bytes": amt(a["cumulativeBytes"]),
                "cumulative_amount": amt(a["cumulativeAmount"]),
                "payout": amt(a["payout"]),
            },
        )
    )
    changes.append(_entry(ev, 0, "payment", f"escrow:{a['orderId']}", f"wallet:{a['provider']}", a["payout"]))
    return changes


def order_closed(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    changes: list[Change] = []
    order = state.get("orders", a["orderId"])
    if order is not None:
        order = dict(order)
        order.update(
            paid=amt(a["totalPaid"]),
            refunded=amt(a["refund"]),
            status="closed",
            cooperative=1 if a["cooperative"] else 0,
            closed_block=ev.block_number,
        )
        changes.append(Put("orders", a["orderId"], order))
    seq = 0
    if a["payout"]:
        changes.append(_entry(ev, seq, "payment", f"escrow:{a['orderId']}", f"wallet:{a['provider']}", a["payout"]))
        seq += 1
    if a["refund"]:
        changes.append(_entry(ev, seq, "refund", f"escrow:{a['orderId']}", f"wallet:{a['client']}", a["refund"]))
    return changes


def order_cancelled(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    """The provider cancelled an order it never accepted: nothing was paid, the whole deposit (`refund`)
    went back to the client. Closed, not co-signed (cooperative 0), cancelled 1."""
    a = ev.args
    changes: list[Change] = []
    order = state.get("orders", a["orderId"])
    if order is not None:
        order = dict(order)
        order.update(
            refunded=amt(a["refund"]), status="closed", cooperative=0, cancelled=1, closed_block=ev.block_number
        )
        changes.append(Put("orders", a["orderId"], order))
    if a["refund"]:
        changes.append(_entry(ev, 0, "refund", f"escrow:{a['orderId']}", f"wallet:{a['client']}", a["refund"]))
    return changes


def refusal_key(provider: str, client: str) -> str:
    return f"{provider}:{client}"


def client_refused(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    """ClientRefused carries the refusal's new end (0 or a past time: lifted); no tokens move."""
    a = ev.args
    key = refusal_key(a["provider"], a["client"])
    row = {
        "refusal_key": key,
        "provider": a["provider"],
        "client": a["client"],
        "refused_until": str(a["refusedUntil"]).zfill(20),
        "updated_block": ev.block_number,
    }
    return [Put("refusals", key, row)]


# ----------------------------------------------------------------------------------------- FlowToken


def transfer(state: State, ev: Event, contracts: dict[str, str]) -> list[Change]:
    """Transfers between outsiders (and the mint and burns); moves into or out of Staking and the market
    are already booked by those contracts' events. The SlashingManager books nothing itself: what it
    receives from a slash is credited to its wallet by Staking's Slashed event, and its rewards and
    burns (transfers to the zero address) are booked here."""
    a = ev.args
    booked = ("Staking", "BandwidthMarket")
    if contracts.get(a["from"]) in booked or contracts.get(a["to"]) in booked or a["value"] == 0:
        return []
    if a["to"] == ZERO_ADDRESS:
        return [_entry(ev, 0, "burn", f"wallet:{a['from']}", BURNED, a["value"])]
    debit = "external" if a["from"] == ZERO_ADDRESS else f"wallet:{a['from']}"
    return [_entry(ev, 0, "transfer", debit, f"wallet:{a['to']}", a["value"])]


# ----------------------------------------------------------------------------------------- CertificateRegistry


def cert_key(owner: str, cert_hash: str) -> str:
    """The key of a ``certificates`` row: CertificateRegistry keeps one record per (owner, certHash)."""
    return f"{owner}:{cert_hash}"


def certificate_registered(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    key = cert_key(a["owner"], a["certHash"])
    row = {
        "cert_key": key,
        "cert_hash": a["certHash"],
        "owner": a["owner"],
        "key_hash": a["keyHash"],
        "pem_cid": a["pemCid"],
        "not_after": a["notAfter"],
        "registered_block": ev.block_number,
        "revoked": 0,
        "revoked_at": None,
        "compromised_at": None,
        "reason": None,
        "revoked_block": None,
    }
    return [Put("certificates", key, row)]


def certificate_revoked(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    key = cert_key(a["owner"], a["certHash"])
    current = state.get("certificates", key)
    if current is None:  # cannot happen on a real chain: the registry only revokes what it registered
        return []
    row = dict(current)
    row.update(
        revoked=1,
        revoked_at=a["revokedAt"],
        compromised_at=a["compromisedAt"],
        reason=a["reason"],
        revoked_block=ev.block_number,
    )
    return [Put("certificates", key, row)]


# ----------------------------------------------------------------------------------------- SlashingManager


def _slash_row(ev: Event, provider: str, epoch: int, route: str, dispute_id: int | None, reporter: str,
               amounts: tuple[int, int, int], evidence_cid: str) -> Append:  # fmt: skip
    amount, reward, burned = amounts
    return Append(
        "slashes",
        {
            "block_number": ev.block_number,
            "log_index": ev.log_index,
            "provider": provider,
            "epoch": epoch,
            "route": route,
            "dispute_id": dispute_id,
            "reporter": reporter,
            "amount": amt(amount),
            "reward": amt(reward),
            "burned": amt(burned),
            "evidence_cid": evidence_cid,
        },
    )


def equivocation_slashed(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    amounts = (a["slashed"], a["reward"], a["burned"])
    return [_slash_row(ev, a["provider"], a["epoch"], "equivocation", None, a["reporter"], amounts, a["evidenceCid"])]


def dispute_opened(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    row = {
        "id": a["disputeId"],
        "provider": a["provider"],
        "epoch": a["epoch"],
        "kind": a["kind"],
        "evidence_cid": a["evidenceCid"],
        "verifiers": json.dumps(list(a["verifiers"])),
        "opener": a["opener"],
        "challenge_ends": a["challengeEnds"],
        "status": "open",
        "due": amt(a["due"]),
        "remaining": len(a["verifiers"]),
        "struck": "[]",
        "rewarded": None,
        "slashed": amt(0),
        "reward": amt(0),
        "burned": amt(0),
        "penalties": None,
        "rebut_order_id": None,
        "bytes_served": None,
        "executor": None,
        "opened_block": ev.block_number,
        "closed_block": None,
    }
    return [Put("disputes", str(a["disputeId"]), row)]


def _closed_dispute(state: State, ev: Event, status: str, **fields: Any) -> list[Change]:
    key = str(ev.args["disputeId"])
    current = state.get("disputes", key)
    if current is None:  # cannot happen on a real chain: only opened disputes close
        return []
    row = dict(current)
    row.update(status=status, closed_block=ev.block_number, **fields)
    return [Put("disputes", key, row)]


def accuser_struck(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    """An accuser's own service proof struck it: its bond (penalty) was burned."""
    a = ev.args
    key = str(a["disputeId"])
    current = state.get("disputes", key)
    if current is None:  # cannot happen on a real chain: only open disputes are rebutted
        return []
    row = dict(current)
    strikes = json.loads(row["struck"])
    strikes.append(
        {
            "verifier": a["verifier"],
            "order_id": a["orderId"],
            "bytes_served": str(a["bytesServed"]),
            "penalty": str(a["penalty"]),
        }
    )
    row.update(
        struck=json.dumps(strikes),
        remaining=a["remaining"],
        burned=amt(int(row["burned"]) + a["penalty"]),
        penalties=json.dumps([s["penalty"] for s in strikes]),
        rebut_order_id=a["orderId"],
        bytes_served=amt(a["bytesServed"]),
    )
    return [Put("disputes", key, row)]


def dispute_rebutted(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    return _closed_dispute(state, ev, "rebutted")


def dispute_executed(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    amounts = (a["slashed"], a["reward"], a["burned"])
    changes = _closed_dispute(
        state,
        ev,
        "executed",
        slashed=amt(a["slashed"]),
        reward=amt(a["reward"]),
        burned=amt(a["burned"]),
        executor=a["executor"],
    )
    if changes:
        d = changes[0].row  # type: ignore[union-attr]
        changes.append(
            _slash_row(
                ev, a["provider"], d["epoch"], "dispute", a["disputeId"], a["executor"], amounts, d["evidence_cid"]
            )
        )
    return changes


def dispute_superseded(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    """Closed by an equivocation slash of the same epoch, whose reward its remaining accusers shared."""
    a = ev.args
    rewarded = list(a["rewarded"])
    return _closed_dispute(
        state, ev, "superseded", rewarded=json.dumps(rewarded), reward=amt(a["rewardEach"] * len(rewarded))
    )


# ----------------------------------------------------------------------------------------- TrustRegistry


def score_changed(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    key = f"{a['subject']}:{a['domain']}"
    row = {
        "score_key": key,
        "subject": a["subject"],
        "domain": a["domain"],
        "score": a["newScore"],
        "updated_block": ev.block_number,
    }
    history = {
        "block_number": ev.block_number,
        "log_index": ev.log_index,
        "subject": a["subject"],
        "domain": a["domain"],
        "scorer": a["scorer"],
        "old_score": a["oldScore"],
        "new_score": a["newScore"],
        "reason_cid": a["reasonCid"],
    }
    return [Put("scores", key, row), Append("score_history", history)]


def scorer_set(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    a = ev.args
    key = f"{a['domain']}:{a['scorer']}"
    row = {
        "scorer_key": key,
        "domain": a["domain"],
        "scorer": a["scorer"],
        "allowed": 1 if a["allowed"] else 0,
        "updated_block": ev.block_number,
    }
    return [Put("scorers", key, row)]


def _authority(state: State, ev: Event, **fields: Any) -> list[Change]:
    key = str(ev.args["domain"])
    current = state.get("trust_authorities", key)
    row = dict(current) if current else {"domain": ev.args["domain"], "authority": None, "pending": None}
    row.update(updated_block=ev.block_number, **fields)
    return [Put("trust_authorities", key, row)]


def authority_transfer_started(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    return _authority(state, ev, authority=ev.args["current"], pending=ev.args["pending"])


def authority_transferred(state: State, ev: Event, _: dict[str, str]) -> list[Change]:
    return _authority(state, ev, authority=ev.args["next"], pending=None)


REDUCERS: dict[tuple[str, str], Reducer] = {
    ("Staking", "Staked"): staked,
    ("Staking", "UnstakeRequested"): unstake_requested,
    ("Staking", "Withdrawn"): withdrawn,
    ("Staking", "OfferPublished"): offer_published,
    ("Staking", "StakeLocked"): stake_locked,
    ("Staking", "StakeUnlocked"): stake_locked,
    ("Staking", "Slashed"): slashed,
    ("Staking", "StakeHeld"): stake_held,
    ("Staking", "StakeReleased"): stake_held,
    ("BandwidthMarket", "OrderOpened"): order_opened,
    ("BandwidthMarket", "Redeemed"): redeemed,
    ("BandwidthMarket", "OrderClosed"): order_closed,
    ("BandwidthMarket", "OrderCancelled"): order_cancelled,
    ("BandwidthMarket", "ClientRefused"): client_refused,
    ("FlowToken", "Transfer"): transfer,
    ("CertificateRegistry", "CertificateRegistered"): certificate_registered,
    ("CertificateRegistry", "CertificateRevoked"): certificate_revoked,
    ("SlashingManager", "EquivocationSlashed"): equivocation_slashed,
    ("SlashingManager", "DisputeOpened"): dispute_opened,
    ("SlashingManager", "AccuserStruck"): accuser_struck,
    ("SlashingManager", "DisputeRebutted"): dispute_rebutted,
    ("SlashingManager", "DisputeExecuted"): dispute_executed,
    ("SlashingManager", "DisputeSuperseded"): dispute_superseded,
    ("TrustRegistry", "ScoreChanged"): score_changed,
    ("TrustRegistry", "ScorerSet"): scorer_set,
    ("TrustRegistry", "AuthorityTransferStarted"): authority_transfer_started,
    ("TrustRegistry", "AuthorityTransferred"): authority_transferred,
}


def reduce(state: State, event: Event, contracts: dict[str, str]) -> list[Change]:
    """The changes `event` makes; `contracts` maps FlowNet contract addresses to names.

    Events without a projection (Approval, EIP712DomainChanged) change nothing but stay in raw_logs.
    """
    reducer = REDUCERS.get((event.contract, event.name))
    return reducer(state, event, contracts) if reducer else []
