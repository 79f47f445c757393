// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IBandwidthMarket} from "./IBandwidthMarket.sol";

/// @title FlowNet slashing manager
/// @notice Staking's only slasher. Two routes slash a provider, each at most once per (provider,
/// epoch), where `epoch = timestamp / epochSeconds`:
///
/// 1. Equivocation, checked on chain, no trust needed: anyone submits two EIP-712 heartbeats
///    `Heartbeat(address provider,uint64 epoch,bytes32 endpointHash,uint32 load,uint64 timestamp)`
///    (domain "FlowNet Heartbeat", version "1", this chain, verifyingContract = Staking) signed by the
///    same provider for the same epoch that name DIFFERENT endpoint hashes. Several heartbeats per
///    epoch with different timestamps or loads are normal liveness reports and prove nothing; only
///    two endpoints at once contradict each other. The provider loses `slashBps` of its stake
///    (active + thawing) at once; the reporter gets `rewardBps` of that, the rest is burned.
/// 2. Quorum disputes: at least `quorum` distinct staked verifiers sign EIP-712
///    `Attestation(address provider,uint64 epoch,uint8 kind,string evidenceCid)` (domain
///    "FlowNet SlashingManager", "1", this chain, this contract). Anyone opens the dispute with their
///    signatures; during `challengeWindow` seconds anyone may rebut it with a client-signed
///    `ServiceProof(bytes32 orderId,uint64 epoch,uint256 bytesServed)` (same domain) for an order of
///    the accused provider that the market knows, bytesServed > 0, and the epoch starting before the
///    order's expiry. A rebuttal burns `accuserPenaltyBps` of each accusing verifier's stake (burned,
///    not paid to the provider, so a provider colluding with a client of its own gains nothing from
///    rebutting). After the window anyone executes the slash: `slashBps` of the provider's stake,
///    `rewardBps` of it split equally among the accusing verifiers, the rest burned.
///
/// Guards on both routes: epochs more than `statuteEpochs` before the current one, and future epochs,
/// are refused (checked when evidence is submitted: at the equivocation slash, at openDispute); each
/// evidence CID is used once, ever; the amount slashed from one provider in one period
/// (`timestamp / period`) never exceeds `capPerPeriod`: a slash takes min(slashBps of the stake, what
/// the cap leaves) and is refused while the cap is exhausted (the evidence stays unused and may be
/// submitted again in a later period, statute permitting). Every slash also halves the provider's
/// Network score in the TrustRegistry, with the evidence CID as the reason.
///
/// A verifier counts for a dispute when, at the block the dispute is opened (signatures are only
/// ever checked then), it has the Verifier role, active stake at least Staking's verifier minimum and
/// nothing thawing. Because `challengeWindow <= Staking.thawPeriod()` (checked at deployment), a
/// verifier that starts unbonding after signing still has its stake in Staking, as thawing stake,
/// when a rebuttal comes, so its penalty cannot be dodged by leaving.
/// @dev Every state change emits an event carrying everything an indexer needs.
interface ISlashingManager {
    /// @notice A provider's signed liveness statement (see flownet/core/heartbeat.py).
    struct Heartbeat {
        address provider;
        uint64 epoch;
        bytes32 endpointHash;
        uint32 load;
        uint64 timestamp;
    }

    /// @notice Deployment parameters.
    /// @param challengeWindow Seconds a dispute can be rebutted (1 .. Staking.thawPeriod()).
    /// @param epochSeconds Length of an epoch in seconds (heartbeats use 30).
    /// @param statuteEpochs How many epochs back evidence is accepted.
    /// @param period Length in seconds of the period the per-provider cap applies to.
    /// @param capPerPeriod Most tokens slashed from one provider in one period.
    /// @param slashBps Share of the provider's stake (active + thawing) a slash takes (1..10,000).
    /// @param rewardBps Share of a slash paid to the reporter or verifiers (0..MAX_REWARD_BPS).
    /// @param accuserPenaltyBps Share of each accusing verifier's stake burned on a rebuttal (1..10,000).
    /// @param quorum Distinct verifier signatures a dispute needs (1..MAX_ATTESTATIONS).
    struct Config {
        uint64 challengeWindow;
        uint64 epochSeconds;
        uint64 statuteEpochs;
        uint64 period;
        uint96 capPerPeriod;
        uint16 slashBps;
        uint16 rewardBps;
        uint16 accuserPenaltyBps;
        uint8 quorum;
    }

    /// @notice Where a dispute is in its life.
    enum DisputeStatus {
        None,
        Open,
        Rebutted,
        Executed,
        Superseded
    }

    /// @notice A stored dispute.
    /// @param provider The accused provider.
    /// @param epoch The epoch of the alleged failure.
    /// @param challengeEnds Unix time from which the dispute can be executed and no longer rebutted.
    /// @param kind What failed (0 Unreachable, 1 Latency, 2 Throughput, 3 Metering).
    /// @param status Open, Rebutted, Executed or Superseded (by an equivocation slash of the same epoch).
    /// @param verifiers The accusing verifiers, in signature order.
    /// @param evidenceCid IPFS CID of the verifiers' evidence.
    struct Dispute {
        address provider;
        uint64 epoch;
        uint64 challengeEnds;
        uint8 kind;
        DisputeStatus status;
        address[] verifiers;
        string evidenceCid;
    }

    /// @notice `provider` signed two heartbeats for `epoch` naming different endpoints (`endpointA`,
    /// `endpointB`); `reporter` proved it with the evidence at `evidenceCid`. `slashed` was taken,
    /// `reward` paid to the reporter and `burned` burned (slashed = reward + burned).
    event EquivocationSlashed(
        address indexed provider,
        uint64 indexed epoch,
        address indexed reporter,
        bytes32 endpointA,
        bytes32 endpointB,
        string evidenceCid,
        uint256 slashed,
        uint256 reward,
        uint256 burned
    );

    /// @notice Dispute `disputeId` against `provider` for `epoch` was opened by `opener` with the
    /// signatures of `verifiers`; it can be rebutted until `challengeEnds`.
    event DisputeOpened(
        uint256 indexed disputeId,
        address indexed provider,
        uint64 indexed epoch,
        uint8 kind,
        string evidenceCid,
        address[] verifiers,
        address opener,
        uint64 challengeEnds
    );

    /// @notice Dispute `disputeId` against `provider` was rebutted with `order`'s client-signed proof
    /// of `bytesServed`; each of `verifiers` lost the matching entry of `penalties`, `burned` in total.
    event DisputeRebutted(
        uint256 indexed disputeId,
        address indexed provider,
        bytes32 indexed orderId,
        uint256 bytesServed,
        address[] verifiers,
        uint256[] penalties,
        uint256 burned
    );

    /// @notice Dispute `disputeId` was executed by `executor`: `slashed` was taken from `provider`,
    /// `reward` paid in total to the accusing verifiers (`rewardEach` each) and `burned` burned.
    event DisputeExecuted(
        uint256 indexed disputeId,
        address indexed provider,
        address indexed executor,
        uint256 slashed,
        uint256 reward,
        uint256 rewardEach,
        uint256 burned
    );

    /// @notice Dispute `disputeId` against `provider` for `epoch` was closed without effect because an
    /// equivocation slash of the same (provider, epoch) came first.
    event DisputeSuperseded(uint256 indexed disputeId, address indexed provider, uint64 indexed epoch);

    /// @notice A constructor argument is invalid; `name` says which and `value` is what was given
    /// (an address as a number).
    error SlashingInvalidConfig(string name, uint256 value);

    /// @notice The challenge window is longer than Staking's thawing period: accused or accusing
    /// stake could leave before the window ends.
    error SlashingChallengeWindowTooLong(uint256 challengeWindow, uint256 thawPeriod);

    /// @notice The evidence CID is empty or longer than `maxLength` bytes.
    error SlashingInvalidEvidenceCid(uint256 length, uint256 maxLength);

    /// @notice The evidence CID (keccak256 `evidenceHash`) was already used.
    error SlashingEvidenceUsed(bytes32 evidenceHash);

    /// @notice `provider` was already slashed for `epoch`.
    error SlashingEpochAlreadySlashed(address provider, uint64 epoch);

    /// @notice `epoch` is more than `statuteEpochs` before the current epoch `currentEpoch`.
    error SlashingEpochExpired(uint64 epoch, uint64 currentEpoch, uint64 statuteEpochs);

    /// @notice `epoch` is after the current epoch `currentEpoch`.
    error SlashingEpochInFuture(uint64 epoch, uint64 currentEpoch);

    /// @notice `provider` has already lost `slashed`, the whole cap `cap`, in period `period`.
    error SlashingCapReached(address provider, uint256 period, uint256 slashed, uint256 cap);

    /// @notice The two heartbeats are for different providers or epochs.
    error SlashingHeartbeatMismatch(address providerA, uint64 epochA, address providerB, uint64 epochB);

    /// @notice Both heartbeats name the same endpoint hash: no equivocation.
    error SlashingNotEquivocation(address provider, uint64 epoch, bytes32 endpointHash);

    /// @notice A signature is not 65 bytes long.
    error SlashingInvalidSignatureLength(uint256 length);

    /// @notice A signature's s is in the upper half of the curve order (malleable).
    error SlashingInvalidSignatureS(bytes32 s);

    /// @notice A signature's v is not 27 or 28.
    error SlashingInvalidSignatureV(uint8 v);

    /// @notice A signature recovers to no address for `digest`.
    error SlashingInvalidSignature(bytes32 digest);

    /// @notice A signature is by `signer`, not by `expected`.
    error SlashingWrongSigner(address signer, address expected);

    /// @notice `count` attestations were given; `quorum` are needed.
    error SlashingTooFewAttestations(uint256 count, uint256 quorum);

    /// @notice `count` attestations were given; at most `max` are accepted.
    error SlashingTooManyAttestations(uint256 count, uint256 max);

    /// @notice `verifier` signed more than one of the attestations.
    error SlashingDuplicateVerifier(address verifier);

    /// @notice `signer` is not a staked verifier: its role is `role` (2 is Verifier), its active stake
    /// `active` (the minimum is `minimum`) and its thawing stake `thawing` (must be 0).
    error SlashingNotStakedVerifier(address signer, uint8 role, uint256 active, uint256 minimum, uint256 thawing);

    /// @notice `account` is not a provider (its role is `role`).
    error SlashingNotProvider(address account, uint8 role);

    /// @notice `kind` is above MAX_KIND (`maxKind`).
    error SlashingInvalidKind(uint8 kind, uint8 maxKind);

    /// @notice Dispute `disputeId` is already open for (`provider`, `epoch`).
    error SlashingDisputeAlreadyOpen(address provider, uint64 epoch, uint256 disputeId);

    /// @notice Dispute `disputeId` is not open (its status is `status`; 0 means it does not exist).
    error SlashingDisputeNotOpen(uint256 disputeId, DisputeStatus status);

    /// @notice Dispute `disputeId` can no longer be rebutted: the window ended at `challengeEnds`; it is `now`.
    error SlashingChallengeWindowOver(uint256 disputeId, uint64 challengeEnds, uint256 now);

    /// @notice Dispute `disputeId` cannot be executed before `challengeEnds`; it is `now`.
    error SlashingChallengeWindowOpen(uint256 disputeId, uint64 challengeEnds, uint256 now);

    /// @notice Order `orderId`'s provider is `orderProvider`, not the accused `provider`.
    error SlashingOrderNotForProvider(bytes32 orderId, address orderProvider, address provider);

    /// @notice The market knows no order `orderId`.
    error SlashingUnknownOrder(bytes32 orderId);

    /// @notice A service proof for order `orderId` claims zero bytes.
    error SlashingZeroBytesServed(bytes32 orderId);

    /// @notice `epoch` starts at `epochStart`, not before order `orderId`'s expiry `expiry`.
    error SlashingEpochAfterExpiry(bytes32 orderId, uint64 epoch, uint256 epochStart, uint64 expiry);

    /// @notice Anyone: slash `a.provider` for signing `a` and `b` (same provider and epoch, different
    /// endpoint hashes; `sigA`/`sigB` are 65-byte r‖s‖v signatures, low s, v 27 or 28). The caller is
    /// the reporter and gets the reward. Returns what was slashed.
    function slashEquivocation(
        Heartbeat calldata a,
        bytes calldata sigA,
        Heartbeat calldata b,
        bytes calldata sigB,
        string calldata evidenceCid
    ) external returns (uint256 slashed);

    /// @notice Anyone: open a dispute against `provider` for `epoch` with at least `quorum`
    /// signatures of distinct staked verifiers over Attestation(provider, epoch, kind, evidenceCid).
    /// Returns the dispute's id (1, 2, ...).
    function openDispute(
        address provider,
        uint64 epoch,
        uint8 kind,
        string calldata evidenceCid,
        bytes[] calldata signatures
    ) external returns (uint256 disputeId);

    /// @notice Anyone, before the dispute's challengeEnds: rebut dispute `disputeId` with `order`'s
    /// client's signature `clientSignature` over ServiceProof(keccak256(abi.encode(order)), epoch,
    /// bytesServed). Burns each accuser's penalty; the dispute can never be executed.
    function rebut(
        uint256 disputeId,
        IBandwidthMarket.Order calldata order,
        uint256 bytesServed,
        bytes calldata clientSignature
    ) external;

    /// @notice Anyone, from the dispute's challengeEnds: slash the accused provider. Returns what was slashed.
    function executeDispute(uint256 disputeId) external returns (uint256 slashed);

    /// @notice The EIP-712 digest a provider signs for `heartbeat` (Staking's heartbeat domain).
    function heartbeatDigest(Heartbeat calldata heartbeat) external view returns (bytes32);

    /// @notice The EIP-712 digest a verifier signs to attest a failure.
    function attestationDigest(address provider, uint64 epoch, uint8 kind, string calldata evidenceCid)
        external
        view
        returns (bytes32);

    /// @notice The EIP-712 digest a client signs to prove service in `epoch`.
    function serviceProofDigest(bytes32 orderId, uint64 epoch, uint256 bytesServed) external view returns (bytes32);

    /// @notice Dispute `disputeId` (status None if it does not exist).
    function disputeOf(uint256 disputeId) external view returns (Dispute memory);

    /// @notice The id the next dispute will get.
    function nextDisputeId() external view returns (uint256);

    /// @notice The open dispute for (`provider`, `epoch`), 0 if none.
    function openDisputeOf(address provider, uint64 epoch) external view returns (uint256);

    /// @notice Whether `provider` was slashed for `epoch`.
    function isEpochSlashed(address provider, uint64 epoch) external view returns (bool);

    /// @notice Whether the evidence CID with keccak256 `evidenceHash` was used.
    function isEvidenceUsed(bytes32 evidenceHash) external view returns (bool);

    /// @notice What was slashed from `provider` in period `periodIndex` (timestamp / period).
    function slashedInPeriod(address provider, uint256 periodIndex) external view returns (uint256);

    /// @notice block.timestamp / epochSeconds.
    function currentEpoch() external view returns (uint64);

    /// @notice The deployment parameters.
    function config() external view returns (Config memory);

    /// @notice The Staking contract this manager slashes through.
    function staking() external view returns (address);

    /// @notice The market whose orders rebut disputes (Staking's market).
    function market() external view returns (address);

    /// @notice The token slashed and burned (Staking's token).
    function token() external view returns (address);

    /// @notice The TrustRegistry told about every slash.
    function trustRegistry() external view returns (address);
}
