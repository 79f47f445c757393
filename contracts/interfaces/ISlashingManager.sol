// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IBandwidthMarket} from "./IBandwidthMarket.sol";

/// @title FlowNet slashing manager
/// @notice Staking's only slasher. Two routes slash a provider, each at most once per (provider,
/// epoch), where `epoch = timestamp / epochSeconds`. The rules below are one mechanism with one aim:
/// a provider that cheats loses stake, and nobody can hurt an honest provider or an honest verifier
/// at a profit. README.md ("Disputes") gives the argument for each rule.
///
/// 1. Equivocation, checked on chain, no trust needed: anyone submits two EIP-712 heartbeats
///    `Heartbeat(address provider,uint64 epoch,bytes32 endpointHash,uint32 load,uint64 timestamp)`
///    (domain "FlowNet Heartbeat", version "1", this chain, verifyingContract = Staking) signed by the
///    same provider for the same epoch that name DIFFERENT endpoint hashes. Several heartbeats per
///    epoch with different timestamps or loads are normal liveness reports and prove nothing. Only a
///    signer that is a provider with stake to take can be slashed: anything else is refused
///    (`SlashingNothingToSlash`) and consumes nothing. The provider loses `slashBps` of its stake
///    (active + thawing); `rewardBps` of that is paid, the rest burned. The reward goes to the caller,
///    except when a dispute about the same (provider, epoch) is open: then the dispute is superseded
///    and the reward is split among its remaining accusers, so an accused provider that reports its
///    own equivocation from another account to pre-empt its dispute gains nothing.
/// 2. Quorum disputes: at least `quorum` distinct staked verifiers sign EIP-712
///    `Attestation(address provider,uint64 epoch,uint8 kind,string evidenceCid)` (domain
///    "FlowNet SlashingManager", "1", this chain, this contract); anyone opens the dispute with their
///    signatures. Each set of signatures opens at most one dispute, ever (the attestation digest is
///    used up), and one dispute per (provider, epoch) is open at a time.
///    - Holds. Opening computes `due = min(slashBps of the provider's unheld stake, what the
///      period's cap leaves, each accuser's unheld stake)` (> 0, else `SlashingNothingToSlash`) and
///      has Staking hold `due` of the provider's stake and a bond of `due` from EACH accuser. Held stake
///      cannot be withdrawn, so what was slashable at opening is still there at execution, and no
///      accuser can leave before a rebuttal. A verifier takes part in at most
///      `MAX_OPEN_PER_VERIFIER` open disputes.
///    - Rebuttal (strikes). During `challengeWindow` seconds anyone may present a client-signed
///      `ServiceProof(bytes32 orderId,uint64 epoch,uint256 bytesServed)` (same domain), for the
///      disputed epoch, bytesServed > 0, for an order of the accused provider that the market knows
///      and whose expiry is after the epoch's start, whose client is one of the dispute's accusers.
///      A verifier signs a service proof for an epoch only when it judged the provider's service in
///      it acceptable on every kind it measured, so its proof contradicts its own attestation of any
///      kind: the accuser is struck, its whole bond is burned (`Staking.penalize`: its certificates
///      are not revoked), and the dispute is rebutted once fewer than `quorum` accusers remain. A
///      proof signed by anyone else (a client of the provider's own, a sybil order) proves nothing
///      against the accusers and is refused. A struck colluder therefore always loses at least what
///      the provider would have lost.
///    - Execution. After the window anyone executes: the provider loses min(due, what the cap
///      leaves now); all of it is burned, the accusers' bonds are released. Quorum disputes pay no
///      reward: no evidence on chain can show that a provider served a verifier that never tried
///      to reach it, so a reward for an unrebutted claim would be a reward for a lie. A coalition
///      of verifiers therefore gains nothing from any dispute, and loses its bonds if it accuses a
///      provider that served it.
///
/// Guards on both routes: epochs more than `statuteEpochs` before the current one, and future epochs,
/// are refused when evidence is submitted (the equivocation slash, openDispute); the amount slashed
/// from one provider in one period (`timestamp / period`) never exceeds `capPerPeriod`; a slash is
/// refused while the cap is exhausted (a dispute stays open and can be executed in a later period).
/// Every slash halves the provider's Network score in the TrustRegistry, with the evidence CID as the
/// reason. The gas of each call is bounded: at most MAX_ATTESTATIONS accusers, one strike per rebut
/// call, and no certificate revocations on the verifier side.
///
/// A verifier counts for a dispute when, at the block the dispute is opened, it has the Verifier role,
/// active stake at least Staking's verifier minimum, nothing thawing, and unheld stake for its bond.
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
    /// @param rewardBps Share of an equivocation slash paid to its reporter (0..MAX_REWARD_BPS).
    /// @param quorum Distinct verifier signatures a dispute needs (1..MAX_ATTESTATIONS).
    struct Config {
        uint64 challengeWindow;
        uint64 epochSeconds;
        uint64 statuteEpochs;
        uint64 period;
        uint96 capPerPeriod;
        uint16 slashBps;
        uint16 rewardBps;
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
    /// @param remaining Accusers not struck (yet).
    /// @param struck Bit i set: `verifiers[i]` was struck by its own service proof.
    /// @param due The provider's stake held for this dispute, and each accuser's bond.
    /// @param verifiers The accusing verifiers, in signature order.
    /// @param evidenceCid IPFS CID of the verifiers' evidence.
    struct Dispute {
        address provider;
        uint64 epoch;
        uint64 challengeEnds;
        uint8 kind;
        DisputeStatus status;
        uint8 remaining;
        uint16 struck;
        uint96 due;
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
    /// signatures of `verifiers`; it can be rebutted until `challengeEnds`. `due` of the provider's
    /// stake is held, and a bond of `due` from each verifier.
    event DisputeOpened(
        uint256 indexed disputeId,
        address indexed provider,
        uint64 indexed epoch,
        uint8 kind,
        string evidenceCid,
        address[] verifiers,
        address opener,
        uint64 challengeEnds,
        uint256 due
    );

    /// @notice Accuser `verifier` of dispute `disputeId` was struck by its own service proof for
    /// `orderId` (`bytesServed` in the disputed epoch); `penalty` of its stake was burned and
    /// `remaining` accusers are left.
    event AccuserStruck(
        uint256 indexed disputeId,
        address indexed verifier,
        bytes32 indexed orderId,
        uint256 bytesServed,
        uint256 penalty,
        uint256 remaining
    );

    /// @notice Dispute `disputeId` against `provider` was rebutted: only `remaining` accusers (fewer
    /// than the quorum) were left after strikes. Every hold of the dispute was released.
    event DisputeRebutted(uint256 indexed disputeId, address indexed provider, uint256 remaining);

    /// @notice Dispute `disputeId` was executed by `executor`: `slashed` was taken from `provider` and
    /// `burned` burned. `reward` and `rewardEach` are always 0 (quorum disputes pay no reward; the
    /// fields stay so that every slash event has the same shape).
    event DisputeExecuted(
        uint256 indexed disputeId,
        address indexed provider,
        address indexed executor,
        uint256 slashed,
        uint256 reward,
        uint256 rewardEach,
        uint256 burned
    );

    /// @notice Dispute `disputeId` against `provider` for `epoch` was closed because an equivocation
    /// slash of the same (provider, epoch) came first; its holds were released and the equivocation
    /// reward went to its remaining accusers `rewarded`, `rewardEach` each.
    event DisputeSuperseded(
        uint256 indexed disputeId,
        address indexed provider,
        uint64 indexed epoch,
        address[] rewarded,
        uint256 rewardEach
    );

    /// @notice A constructor argument is invalid; `name` says which and `value` is what was given
    /// (an address as a number).
    error SlashingInvalidConfig(string name, uint256 value);

    /// @notice The challenge window is longer than Staking's thawing period: accused or accusing
    /// stake could leave before the window ends.
    error SlashingChallengeWindowTooLong(uint256 challengeWindow, uint256 thawPeriod);

    /// @notice The evidence CID is empty or longer than `maxLength` bytes.
    error SlashingInvalidEvidenceCid(uint256 length, uint256 maxLength);

    /// @notice These signatures (over attestation digest `digest`) already opened a dispute.
    error SlashingAttestationUsed(bytes32 digest);

    /// @notice Nothing can be taken from `provider` for `epoch`: it is not a staked provider, or its
    /// stake is all held by other open disputes.
    error SlashingNothingToSlash(address provider, uint64 epoch);

    /// @notice `verifier`'s whole stake is held (`held`) by other open disputes: it has no bond to give.
    error SlashingVerifierStakeHeld(address verifier, uint256 held);

    /// @notice `verifier` already accuses in `open` open disputes, the most allowed.
    error SlashingTooManyOpenDisputes(address verifier, uint256 open);

    /// @notice Dispute `disputeId`'s accusers do not include `client` (not struck yet): only an
    /// accuser's own service proof rebuts.
    error SlashingProofNotFromAccuser(uint256 disputeId, address client);

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
    /// the reporter and gets the reward, unless a dispute about the same (provider, epoch) is open
    /// (then its remaining accusers share it). `evidenceCid` names the reporter's evidence document
    /// (the reason recorded in the TrustRegistry). Returns what was slashed.
    function slashEquivocation(
        Heartbeat calldata a,
        bytes calldata sigA,
        Heartbeat calldata b,
        bytes calldata sigB,
        string calldata evidenceCid
    ) external returns (uint256 slashed);

    /// @notice Anyone: open a dispute against `provider` for `epoch` with at least `quorum`
    /// signatures of distinct staked verifiers over Attestation(provider, epoch, kind, evidenceCid).
    /// Holds `due` of the provider's stake and of each verifier's. Returns the dispute's id (1, 2, ...).
    function openDispute(
        address provider,
        uint64 epoch,
        uint8 kind,
        string calldata evidenceCid,
        bytes[] calldata signatures
    ) external returns (uint256 disputeId);

    /// @notice Anyone, before the dispute's challengeEnds: strike the accuser that is `order`'s client
    /// with its signature `clientSignature` over ServiceProof(keccak256(abi.encode(order)), epoch,
    /// bytesServed). Burns that accuser's bond; once fewer than `quorum` accusers remain the dispute is
    /// rebutted and can never be executed. One strike per call, so its gas is bounded.
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

    /// @notice Whether the attestation digest `digest` already opened a dispute.
    function isAttestationUsed(bytes32 digest) external view returns (bool);

    /// @notice How many open disputes `verifier` accuses in.
    function openDisputesOf(address verifier) external view returns (uint256);

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
