"""Decode revert data into the contract's custom error and a sentence a user can act on.

``decode(data)`` finds the error in FlowNet's ABIs (which include OpenZeppelin's ERC-20 and EIP-2612
errors) and returns a `Revert` with its name, its arguments and ``sentence``, for example
``Staking: stake 500 FLOW is below the minimum 1,000 FLOW``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from web3 import Web3

from flownet.chain.artifacts import load_artifact
from flownet.core.units import format_flow

ERROR_SOURCES = ("FlowToken", "Staking", "BandwidthMarket", "CertificateRegistry", "SlashingManager", "TrustRegistry")
ROLES = {0: "none", 1: "provider", 2: "verifier"}
AMOUNT_ARGS = {
    "amount",
    "stake",
    "minimum",
    "available",
    "deposit",
    "paid",
    "maxAmount",
    "balance",
    "needed",
    "allowance",
    "locked",
    "supply",
    "max",
    "slashed",
    "cap",
    "active",
    "thawing",
}
PRICE_ARGS = {"price", "maxPrice"}
TIME_ARGS = {
    "thawEnd",
    "now",
    "reclaimableAt",
    "deadline",
    "revokedAt",
    "compromisedAt",
    "notAfter",
    "challengeEnds",
    "nextAllowedAt",
    "epochStart",
    "expiry",
    "refusedUntil",
}

#: One sentence per error; {arg} placeholders are filled with formatted argument values.
SENTENCES = {
    "StakingZeroAmount": "Staking: the amount must be more than zero",
    "StakingWrongRole": "Staking: {account} cannot act as {role} here (its role is {expected})",
    "StakingBelowMinimum": "Staking: stake {stake} is below the minimum {minimum}",
    "StakingAmountTooLarge": "Staking: {amount} is too large",
    "StakingInsufficientUnlockedStake": "Staking: {account} asked for {amount} but only {available} is unlocked",
    "StakingNothingToWithdraw": "Staking: {account} has nothing thawed to withdraw",
    "StakingStillThawing": "Staking: the stake of {account} thaws until {thawEnd} (now {now})",
    "StakingInvalidMetadataCid": "Staking: metadata CID length {length} is not in 1..{maxLength}",
    "StakingUnauthorized": "Staking: {caller} may not do this (only {allowed})",
    "StakingProviderUnavailable": "Staking: provider {provider} takes no orders (no offer, or stake below minimum)",
    "StakingUnlockExceedsLocked": "Staking: cannot release {amount}, only {locked} is locked for {provider}",
    "StakingInvalidConfig": "Staking: invalid deployment setting {name}",
    "StakingHoldExceedsStake": "Staking: cannot hold {amount} of {account}'s stake, only {free} is not held",
    "StakingReleaseExceedsHeld": "Staking: cannot release {amount} of {account}'s stake, only {held} is held",
    "StakingWithdrawalHeld": (
        "Staking: {account}'s thawed stake {thawing} is held for open disputes ({held} held, {active} active): "
        "withdraw after they end"
    ),
    "MarketInvalidDeposit": "Market: deposit {deposit} is not valid (must be more than zero)",
    "MarketInvalidDuration": "Market: duration {duration} s is not in 1..{maxDuration} s",
    "MarketPriceAboveMax": "Market: provider {provider} asks {price}, above your maximum {maxPrice}",
    "MarketInvalidProvider": "Market: {provider} cannot be the provider of this order",
    "MarketOrderNotOpen": "Market: order {orderId} is not open (unknown or already closed)",
    "MarketTermsMismatch": "Market: the order terms hash to {termsId}, not to order {orderId}",
    "MarketInvalidReceiptSignature": "Market: the receipt for order {orderId} is not signed by its client",
    "MarketInvalidCloseSignature": "Market: the close of order {orderId} is not signed by its provider",
    "MarketReceiptNotNewer": "Market: receipt amount {amount} for order {orderId} is not above the {paid} already paid",
    "MarketAmountExceedsDeposit": "Market: amount {amount} for order {orderId} exceeds its deposit {deposit}",
    "MarketAmountAbovePrice": "Market: amount {amount} for order {orderId} is more than the bytes cost ({maxAmount})",
    "MarketFinalBelowPaid": "Market: final amount {amount} for order {orderId} is below the {paid} already paid",
    "MarketNotClient": "Market: only the client {client} may do this for order {orderId}, not {caller}",
    "MarketNotReclaimable": "Market: order {orderId} can be reclaimed from {reclaimableAt} (now {now})",
    "MarketNotProvider": "Market: only the provider {provider} may do this for order {orderId}, not {caller}",
    "MarketOrderAccepted": (
        "Market: order {orderId} was accepted (its provider redeemed {paid} of it) and can no longer be cancelled"
    ),
    "MarketOrderNotAccepted": (
        "Market: order {orderId} is not accepted yet: only its provider {provider} may redeem its first receipt, "
        "not {caller}"
    ),
    "MarketClientRefused": "Market: provider {provider} refuses orders from {client} until {refusedUntil}",
    "MarketEmptyBatch": "Market: no receipts given",
    "MarketInvalidConfig": "Market: invalid deployment setting {name}",
    "ERC20InsufficientBalance": "FlowToken: {sender} holds {balance} but {needed} is needed",
    "ERC20InsufficientAllowance": "FlowToken: {spender} may spend {allowance} but {needed} is needed (approve first)",
    "ERC20InvalidReceiver": "FlowToken: cannot send to {receiver}",
    "ERC20InvalidSender": "FlowToken: cannot send from {sender}",
    "ERC20InvalidApprover": "FlowToken: invalid approver {approver}",
    "ERC20InvalidSpender": "FlowToken: invalid spender {spender}",
    "ERC2612ExpiredSignature": "FlowToken: the permit expired at {deadline}",
    "ERC2612InvalidSigner": "FlowToken: the permit is signed by {signer}, not by {owner}",
    "InvalidAccountNonce": "FlowToken: nonce {currentNonce} expected for {account}",
    "SafeERC20FailedOperation": "token {token} refused the transfer",
    "CertificateAlreadyRegistered": "Registry: certificate {certHash} is already registered by {owner}",
    "CertificateAlreadyRevoked": "Registry: certificate {certHash} was already revoked at {revokedAt}",
    "CertificateInvalidCompromisedAt": "Registry: compromise time {compromisedAt} is in the future (now {now})",
    "CertificateInvalidConfig": "Registry: invalid deployment setting {name}",
    "CertificateInvalidNotAfter": "Registry: the certificate expires at {notAfter}, not after now ({now})",
    "CertificateInvalidPemCid": "Registry: PEM CID length {length} is not in 1..{maxLength}",
    "CertificateInvalidReason": "Registry: revocation reason {reason} is not one you may give",
    "CertificateNotRegistered": "Registry: {owner}'s certificate {certHash} is not registered",
    "CertificateTooManyActive": "Registry: {owner} already has the maximum of {maximum} active certificates",
    "CertificateUnauthorized": "Registry: {caller} may not do this (only {allowed})",
    "CertificateZeroHash": "Registry: certificate hash {certHash} and key hash {keyHash} must not be zero",
    "FlowTokenInvalidHolder": "FlowToken: the initial holder cannot be {holder}",
    "FlowTokenSupplyTooLarge": "FlowToken: supply {supply} exceeds the maximum {max}",
    "SlashingInvalidConfig": "Slashing: invalid deployment setting {name} ({value})",
    "SlashingChallengeWindowTooLong": "Slashing: challenge window {challengeWindow} s > thaw period {thawPeriod} s",
    "SlashingInvalidEvidenceCid": "Slashing: evidence CID length {length} is not in 1..{maxLength}",
    "SlashingAttestationUsed": "Slashing: these attestations (digest {digest}) already opened a dispute",
    "SlashingNothingToSlash": "Slashing: nothing can be taken from {provider} for epoch {epoch} (no stake or all held)",
    "SlashingVerifierStakeHeld": "Slashing: all of verifier {verifier}'s stake is held ({held}) by open disputes",
    "SlashingTooManyOpenDisputes": "Slashing: verifier {verifier} already accuses in {open} open disputes, the most",
    "SlashingProofNotFromAccuser": (
        "Slashing: {client} is not an accuser of dispute {disputeId}: only an accuser's own service proof rebuts"
    ),
    "SlashingEpochAlreadySlashed": "Slashing: {provider} was already slashed for epoch {epoch}",
    "SlashingEpochExpired": "Slashing: epoch {epoch} is over {statuteEpochs} epochs before {currentEpoch}",
    "SlashingEpochInFuture": "Slashing: epoch {epoch} is after the current epoch {currentEpoch}",
    "SlashingCapReached": "Slashing: {provider} already lost {slashed} in period {period}, the cap {cap} (try later)",
    "SlashingHeartbeatMismatch": "Slashing: heartbeats for {providerA} epoch {epochA} and {providerB} epoch {epochB}",
    "SlashingNotEquivocation": "Slashing: both heartbeats of {provider} for epoch {epoch} name endpoint {endpointHash}",
    "SlashingInvalidSignatureLength": "Slashing: a signature has {length} bytes, not 65",
    "SlashingInvalidSignatureS": "Slashing: a signature is malleable (high s {s})",
    "SlashingInvalidSignatureV": "Slashing: a signature has v {v}, not 27 or 28",
    "SlashingInvalidSignature": "Slashing: a signature over {digest} recovers to no address",
    "SlashingWrongSigner": "Slashing: a signature is by {signer}, not by {expected}",
    "SlashingTooFewAttestations": "Slashing: {count} verifier signatures given, {quorum} needed",
    "SlashingTooManyAttestations": "Slashing: {count} verifier signatures given, at most {max} accepted",
    "SlashingDuplicateVerifier": "Slashing: verifier {verifier} signed more than once",
    "SlashingNotStakedVerifier": (
        "Slashing: {signer} is not a staked verifier (role {role}, active {active} of minimum {minimum}, "
        "thawing {thawing})"
    ),
    "SlashingNotProvider": "Slashing: {account} is not a provider (its role is {role})",
    "SlashingInvalidKind": "Slashing: failure kind {kind} is not in 0..{maxKind}",
    "SlashingDisputeAlreadyOpen": "Slashing: dispute {disputeId} is already open for {provider} epoch {epoch}",
    "SlashingDisputeNotOpen": "Slashing: dispute {disputeId} is not open (status {status})",
    "SlashingChallengeWindowOver": "Slashing: dispute {disputeId} could be rebutted until {challengeEnds} (now {now})",
    "SlashingChallengeWindowOpen": "Slashing: dispute {disputeId} can be executed from {challengeEnds} (now {now})",
    "SlashingOrderNotForProvider": "Slashing: order {orderId} is with {orderProvider}, not the accused {provider}",
    "SlashingUnknownOrder": "Slashing: the market knows no order {orderId}",
    "SlashingZeroBytesServed": "Slashing: the service proof for order {orderId} claims zero bytes",
    "SlashingEpochAfterExpiry": "Slashing: epoch {epoch} starts {epochStart}, after order {orderId} expired {expiry}",
    "TrustInvalidDomain": "Trust: domain {domain} is not one of 0 (network), 1 (app), 2 (OS), 3 (package)",
    "TrustScoreTooHigh": "Trust: score {score} is above the maximum {maxScore}",
    "TrustInvalidReasonCid": "Trust: reason CID length {length} is not in 1..{maxLength}",
    "TrustZeroSubject": "Trust: the subject cannot be the zero address",
    "TrustNotScorer": "Trust: {caller} is not a scorer of domain {domain}",
    "TrustNotAuthority": "Trust: {caller} is not the authority of domain {domain} ({authority} is)",
    "TrustNotPendingAuthority": "Trust: {caller} is not the pending authority of domain {domain} ({pending} is)",
    "TrustRateLimited": "Trust: {scorer} may change {subject} in domain {domain} again from {nextAllowedAt}",
    "TrustNotSlashingManager": "Trust: {caller} may not do this (only the slashing manager {slashingManager})",
    "TrustZeroScorer": "Trust: the scorer cannot be the zero address",
    "TrustInvalidConfig": "Trust: invalid deployment setting {name} ({value})",
    "ECDSAInvalidSignature": "the signature is invalid",
    "ECDSAInvalidSignatureLength": "the signature has {length} bytes, not 65",
    "ECDSAInvalidSignatureS": "the signature is malleable (high s {s})",
    "InvalidShortString": "a contract name or version is malformed",
    "StringTooLong": "a contract name or version is too long: {str}",
}


@dataclass(frozen=True)
class Revert:
    """A decoded revert: ``name`` is '' when the data matched no known error."""

    name: str
    args: dict[str, Any]
    raw: str  # Name(arg=value, ...) or a description of the undecodable data
    sentence: str


def _errors() -> dict[bytes, dict[str, Any]]:
    table: dict[bytes, dict[str, Any]] = {}
    for name in ERROR_SOURCES:
        table.update(load_artifact(name).errors_by_selector())
    return table


def _show_raw(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and Web3.is_address(value):
        return Web3.to_checksum_address(value)
    return str(value)


def _show(name: str, value: Any, error: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if name in PRICE_ARGS:
            return f"{format_flow(value)}/GiB"
        if name in AMOUNT_ARGS:
            return format_flow(value)
        if name in TIME_ARGS and 0 < value < 2**40:
            return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if name in {"role", "expected"}:
            return ROLES.get(value, str(value))
    if isinstance(value, bytes) and len(value) == 32:
        return "0x" + value.hex()[:16] + "…"
    return _show_raw(value)


def decode(data: str | bytes | None) -> Revert:
    """The custom error in revert `data` (hex string or bytes)."""
    if data is None:
        return Revert("", {}, "reverted without data", "the transaction reverted without a reason")
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else bytes(data)
    if len(raw) < 4:
        text = f"reverted with data 0x{raw.hex()}"
        return Revert("", {}, text, text)
    selector, body = raw[:4], raw[4:]
    if selector == bytes.fromhex("08c379a0"):
        message = abi_decode(["string"], body)[0]
        return Revert("Error", {"message": message}, f"Error({message!r})", str(message))
    if selector == bytes.fromhex("4e487b71"):
        code = abi_decode(["uint256"], body)[0]
        return Revert("Panic", {"code": code}, f"Panic({code:#x})", f"the contract panicked with code {code:#x}")
    entry = _errors().get(selector)
    if entry is not None:
        try:
            values = abi_decode([i["type"] for i in entry["inputs"]], body)
        except Exception:  # malformed data for this error: fall through to unknown
            entry = None
    if entry is None:
        text = f"unknown error 0x{raw.hex()}"
        return Revert("", {}, text, text)
    names = [i["name"] for i in entry["inputs"]]
    args = dict(zip(names, values, strict=True))
    raw_text = f"{entry['name']}({', '.join(f'{n}={_show_raw(v)}' for n, v in args.items())})"
    template = SENTENCES.get(entry["name"])
    sentence = template.format(**{n: _show(n, v, entry["name"]) for n, v in args.items()}) if template else raw_text
    return Revert(entry["name"], args, raw_text, sentence)
