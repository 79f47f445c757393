// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ISlashingManager} from "./interfaces/ISlashingManager.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {IBandwidthMarket} from "./interfaces/IBandwidthMarket.sol";
import {ITrustRegistry} from "./interfaces/ITrustRegistry.sol";

/// @title FlowNet slashing manager (see ISlashingManager for the full specification)
contract SlashingManager is ISlashingManager, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type of a provider heartbeat (flownet/core/heartbeat.py).
    bytes32 public constant HEARTBEAT_TYPEHASH =
        keccak256("Heartbeat(address provider,uint64 epoch,bytes32 endpointHash,uint32 load,uint64 timestamp)");

    /// @notice EIP-712 type of a verifier's failure attestation.
    bytes32 public constant ATTESTATION_TYPEHASH =
        keccak256("Attestation(address provider,uint64 epoch,uint8 kind,string evidenceCid)");

    /// @notice EIP-712 type of a client's proof of service in an epoch.
    bytes32 public constant SERVICE_PROOF_TYPEHASH =
        keccak256("ServiceProof(bytes32 orderId,uint64 epoch,uint256 bytesServed)");

    /// @notice Highest equivocation reward share: at least half of every slash is burned, so a
    /// reporter never gains as much as the slashed provider loses.
    uint16 public constant MAX_REWARD_BPS = 5_000;

    /// @notice Most attestations one dispute takes; bounds the distinctness check and the hold loops
    /// (and fits the `struck` bit set).
    uint256 public constant MAX_ATTESTATIONS = 16;

    /// @notice Most open disputes one verifier accuses in at a time.
    uint256 public constant MAX_OPEN_PER_VERIFIER = 4;

    /// @notice Highest failure kind (0 Unreachable, 1 Latency, 2 Throughput, 3 Metering).
    uint8 public constant MAX_KIND = 3;

    /// @notice Longest evidence CID accepted.
    uint256 public constant MAX_CID_LENGTH = 128;

    uint256 private constant BPS = 10_000;
    /// @dev secp256k1 order / 2: a larger s is the malleable twin of a valid signature.
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    IStaking private immutable _staking;
    IBandwidthMarket private immutable _market;
    IERC20 private immutable _token;
    ITrustRegistry private immutable _trust;
    uint64 private immutable _challengeWindow;
    uint64 private immutable _epochSeconds;
    uint64 private immutable _statuteEpochs;
    uint64 private immutable _period;
    uint96 private immutable _capPerPeriod;
    uint16 private immutable _slashBps;
    uint16 private immutable _rewardBps;
    uint8 private immutable _quorum;

    uint256 private _nextDisputeId = 1;
    mapping(uint256 disputeId => Dispute) private _disputes;
    mapping(address provider => mapping(uint64 epoch => uint256 disputeId)) private _openDisputes;
    mapping(address provider => mapping(uint64 epoch => bool)) private _slashedEpochs;
    mapping(bytes32 digest => bool) private _usedAttestations;
    mapping(address verifier => uint256) private _openCount;
    mapping(address provider => mapping(uint256 periodIndex => uint256)) private _periodSlashed;

    /// @param staking_ The Staking contract; it must name this contract as its slasher. Its market
    /// and token are this contract's market and token.
    /// @param trustRegistry_ The TrustRegistry, deployed right after this contract at a precomputed
    /// address (its constructor checks that this contract names it).
    /// @param config_ The deployment parameters (see Config).
    constructor(address staking_, address trustRegistry_, Config memory config_)
        EIP712("FlowNet SlashingManager", "1")
    {
        if (staking_ == address(0)) revert SlashingInvalidConfig("staking", 0);
        if (trustRegistry_ == address(0) || trustRegistry_ == staking_) {
            revert SlashingInvalidConfig("trustRegistry", uint160(trustRegistry_));
        }
        IStaking s = IStaking(staking_);
        // Staking names its slasher at deployment; refuse to be a slasher it does not accept.
        address named = s.slasher();
        if (named != address(this)) revert SlashingInvalidConfig("staking.slasher", uint160(named));
        uint64 thaw = s.thawPeriod();
        if (config_.challengeWindow == 0) revert SlashingInvalidConfig("challengeWindow", 0);
        if (config_.challengeWindow > thaw) revert SlashingChallengeWindowTooLong(config_.challengeWindow, thaw);
        if (config_.epochSeconds == 0) revert SlashingInvalidConfig("epochSeconds", 0);
        if (config_.statuteEpochs == 0) revert SlashingInvalidConfig("statuteEpochs", 0);
        if (config_.period == 0) revert SlashingInvalidConfig("period", 0);
        if (config_.capPerPeriod == 0) revert SlashingInvalidConfig("capPerPeriod", 0);
        if (config_.slashBps == 0 || config_.slashBps > BPS) {
            revert SlashingInvalidConfig("slashBps", config_.slashBps);
        }
        if (config_.rewardBps > MAX_REWARD_BPS) revert SlashingInvalidConfig("rewardBps", config_.rewardBps);
        if (config_.quorum == 0 || config_.quorum > MAX_ATTESTATIONS) {
            revert SlashingInvalidConfig("quorum", config_.quorum);
        }
        _staking = s;
        _market = IBandwidthMarket(s.market());
        _token = IERC20(s.token());
        _trust = ITrustRegistry(trustRegistry_);
        _challengeWindow = config_.challengeWindow;
        _epochSeconds = config_.epochSeconds;
        _statuteEpochs = config_.statuteEpochs;
        _period = config_.period;
        _capPerPeriod = config_.capPerPeriod;
        _slashBps = config_.slashBps;
        _rewardBps = config_.rewardBps;
        _quorum = config_.quorum;
    }

    // ---------------------------------------------------------------- equivocation

    /// @inheritdoc ISlashingManager
    function slashEquivocation(
        Heartbeat calldata a,
        bytes calldata sigA,
        Heartbeat calldata b,
        bytes calldata sigB,
        string calldata evidenceCid
    ) external returns (uint256 slashed) {
        address provider = a.provider;
        uint64 epoch = a.epoch;
        if (b.provider != provider || b.epoch != epoch) {
            revert SlashingHeartbeatMismatch(provider, epoch, b.provider, b.epoch);
        }
        // Many heartbeats per epoch are normal; only two different endpoints contradict each other.
        if (a.endpointHash == b.endpointHash) revert SlashingNotEquivocation(provider, epoch, a.endpointHash);
        _checkEpoch(provider, epoch);
        _checkCid(evidenceCid);
        _checkSigner(heartbeatDigest(a), sigA, provider);
        _checkSigner(heartbeatDigest(b), sigB, provider);
        // Only a staked provider's equivocation is a slash; any other signer's is refused outright,
        // so nothing (no epoch, no evidence) is consumed by a slash that takes nothing.
        if (_staking.stakeOf(provider).role != IStaking.Role.Provider || _stakeOf(provider) == 0) {
            revert SlashingNothingToSlash(provider, epoch);
        }

        slashed = _slashEquivocator(provider, epoch, a.endpointHash, b.endpointHash, evidenceCid);
    }

    /// @dev The effects of a proven equivocation (split off slashEquivocation for the stack).
    function _slashEquivocator(
        address provider,
        uint64 epoch,
        bytes32 endpointA,
        bytes32 endpointB,
        string calldata evidenceCid
    ) private returns (uint256 slashed) {
        // An open dispute for the same (provider, epoch) is superseded; its holds end first so the
        // slash below sees the provider's whole stake.
        uint256 disputeId = _openDisputes[provider][epoch];
        // An unassigned memory array is the empty one; it is read only when disputeId != 0, after _close set it.
        // slither-disable-next-line uninitialized-local
        address[] memory rewarded;
        if (disputeId != 0) {
            Dispute storage d = _disputes[disputeId];
            d.status = DisputeStatus.Superseded;
            rewarded = _close(d);
        }
        slashed = _slashProvider(provider, epoch, _stakeOf(provider) * _slashBps / BPS);
        if (slashed == 0) revert SlashingNothingToSlash(provider, epoch);
        uint256 reward = slashed * _rewardBps / BPS;
        uint256 rewardEach = 0;
        if (disputeId != 0) {
            // The reporter may be the accused itself (from another account) pre-empting its dispute:
            // the reward goes to the accusers that stood, never to the reporter.
            uint256 n = rewarded.length;
            // Safe: n >= quorum >= 1 (the dispute was open); rewardEach * n <= reward.
            // Rounding down to a multiple of n is the point: equal shares, the remainder is burned.
            // slither-disable-next-line divide-before-multiply
            rewardEach = reward / n;
            reward = rewardEach * n;
            emit DisputeSuperseded(disputeId, provider, epoch, rewarded, rewardEach);
        }
        // Safe: reward <= slashed * rewardBps / BPS <= slashed.
        uint256 burned = slashed - reward;
        emit EquivocationSlashed(
            provider, epoch, msg.sender, endpointA, endpointB, evidenceCid, slashed, reward, burned
        );
        if (disputeId != 0) {
            if (rewardEach != 0) {
                for (uint256 i; i < rewarded.length; ++i) {
                    _token.safeTransfer(rewarded[i], rewardEach);
                }
            }
        } else if (reward != 0) {
            _token.safeTransfer(msg.sender, reward);
        }
        _burn(burned);
        _trust.onSlash(provider, slashed, evidenceCid);
    }

    // ---------------------------------------------------------------- quorum disputes

    // slither-disable-start reentrancy-no-eth: the only external calls here are to _staking, the immutable Staking
    // set at construction; hold, release, penalize and slash write Staking's storage and call only FlowToken
    // (OpenZeppelin ERC20, no hooks) and the CertificateRegistry, neither of which calls back into this contract.
    /// @inheritdoc ISlashingManager
    function openDispute(
        address provider,
        uint64 epoch,
        uint8 kind,
        string calldata evidenceCid,
        bytes[] calldata signatures
    ) external returns (uint256 disputeId) {
        if (kind > MAX_KIND) revert SlashingInvalidKind(kind, MAX_KIND);
        IStaking.Role role = _staking.stakeOf(provider).role;
        if (role != IStaking.Role.Provider) revert SlashingNotProvider(provider, uint8(role));
        _checkEpoch(provider, epoch);
        uint256 open = _openDisputes[provider][epoch];
        if (open != 0) revert SlashingDisputeAlreadyOpen(provider, epoch, open);
        _checkCid(evidenceCid);
        bytes32 digest = attestationDigest(provider, epoch, kind, evidenceCid);
        if (_usedAttestations[digest]) revert SlashingAttestationUsed(digest);
        _usedAttestations[digest] = true;
        (address[] memory verifiers, uint256 smallestFree) = _checkAttestations(digest, signatures);
        uint256 due = _due(provider, epoch, smallestFree);
        disputeId = _record(provider, epoch, kind, evidenceCid, verifiers, due);
        _staking.hold(provider, due);
        for (uint256 i; i < verifiers.length; ++i) {
            _openCount[verifiers[i]] += 1;
            _staking.hold(verifiers[i], due);
        }
    }
    // slither-disable-end reentrancy-no-eth

    /// @dev Stores a new open dispute and emits DisputeOpened (split off openDispute for the stack).
    function _record(
        address provider,
        uint64 epoch,
        uint8 kind,
        string calldata evidenceCid,
        address[] memory verifiers,
        uint256 due
    ) private returns (uint256 disputeId) {
        disputeId = _nextDisputeId++;
        // Safe: challengeWindow <= 365 days (Staking's thaw bound) and timestamps fit uint64 for ages.
        uint64 challengeEnds = uint64(block.timestamp) + _challengeWindow;
        Dispute storage d = _disputes[disputeId];
        d.provider = provider;
        d.epoch = epoch;
        d.challengeEnds = challengeEnds;
        d.kind = kind;
        d.status = DisputeStatus.Open;
        // Safe: n <= MAX_ATTESTATIONS = 16 and due <= a uint96 stake.
        // forge-lint: disable-next-line(unsafe-typecast)
        d.remaining = uint8(verifiers.length);
        // forge-lint: disable-next-line(unsafe-typecast)
        d.due = uint96(due);
        d.verifiers = verifiers;
        d.evidenceCid = evidenceCid;
        _openDisputes[provider][epoch] = disputeId;
        emit DisputeOpened(disputeId, provider, epoch, kind, evidenceCid, verifiers, msg.sender, challengeEnds, due);
    }

    /// @dev What a dispute about (provider, epoch) holds: slashBps of the provider's unheld stake,
    /// at most what the period's cap leaves and what the poorest accuser can bond.
    function _due(address provider, uint64 epoch, uint256 smallestFree) private view returns (uint256 due) {
        uint256 stake = _stakeOf(provider);
        uint256 held = _staking.heldOf(provider);
        due = stake > held ? (stake - held) * _slashBps / BPS : 0;
        uint256 periodIndex = block.timestamp / _period;
        uint256 already = _periodSlashed[provider][periodIndex];
        if (already >= _capPerPeriod) revert SlashingCapReached(provider, periodIndex, already, _capPerPeriod);
        // Safe: already < capPerPeriod.
        uint256 room = _capPerPeriod - already;
        if (due > room) due = room;
        if (due > smallestFree) due = smallestFree;
        if (due == 0) revert SlashingNothingToSlash(provider, epoch);
    }

    /// @inheritdoc ISlashingManager
    function rebut(
        uint256 disputeId,
        IBandwidthMarket.Order calldata order,
        uint256 bytesServed,
        bytes calldata clientSignature
    ) external {
        Dispute storage d = _open(disputeId);
        if (block.timestamp >= d.challengeEnds) {
            revert SlashingChallengeWindowOver(disputeId, d.challengeEnds, block.timestamp);
        }
        (bytes32 orderId, uint256 index) = _checkProof(disputeId, d, order, bytesServed, clientSignature);
        _strike(disputeId, d, order.client, index, orderId, bytesServed);
    }

    /// @dev Checks a service proof against dispute `d`; returns the order's id and the index of its
    /// client among the accusers not struck.
    function _checkProof(
        uint256 disputeId,
        Dispute storage d,
        IBandwidthMarket.Order calldata order,
        uint256 bytesServed,
        bytes calldata clientSignature
    ) private view returns (bytes32 orderId, uint256 index) {
        address provider = d.provider;
        uint64 epoch = d.epoch;
        orderId = keccak256(abi.encode(order));
        if (order.provider != provider) revert SlashingOrderNotForProvider(orderId, order.provider, provider);
        if (_market.orderState(orderId).status == IBandwidthMarket.Status.None) revert SlashingUnknownOrder(orderId);
        if (bytesServed == 0) revert SlashingZeroBytesServed(orderId);
        uint256 epochStart = uint256(epoch) * _epochSeconds;
        if (epochStart >= order.expiry) revert SlashingEpochAfterExpiry(orderId, epoch, epochStart, order.expiry);
        // Only an accuser's own proof contradicts the accusation; a proof by any other client (a
        // sybil order of the provider's own) says nothing about what the accusers saw.
        index = _accuserIndex(d, order.client);
        if (index == type(uint256).max) revert SlashingProofNotFromAccuser(disputeId, order.client);
        _checkSigner(serviceProofDigest(orderId, epoch, bytesServed), clientSignature, order.client);
    }

    // slither-disable-start reentrancy-no-eth: the only external calls here are to _staking, the immutable Staking
    // set at construction; hold, release, penalize and slash write Staking's storage and call only FlowToken
    // (OpenZeppelin ERC20, no hooks) and the CertificateRegistry, neither of which calls back into this contract.
    /// @dev Strikes accuser `client` (at `index`) from dispute `d`: burns its bond, and rebuts the
    /// dispute once fewer than quorum accusers remain.
    function _strike(
        uint256 disputeId,
        Dispute storage d,
        address client,
        uint256 index,
        bytes32 orderId,
        uint256 bytesServed
    ) private {
        // Safe: index < verifiers.length <= 16; remaining >= 1 (this accuser had not been struck).
        // `1 << index` is bit `index` of the struck set (the lint misreads it as a reversed shift).
        // forge-lint: disable-next-line(unsafe-typecast,incorrect-shift)
        d.struck |= uint16(1 << index);
        uint8 remaining = d.remaining - 1;
        d.remaining = remaining;
        uint256 due = d.due;
        _openCount[client] -= 1;
        _staking.release(client, due);
        uint256 penalty = _staking.penalize(client, due);
        emit AccuserStruck(disputeId, client, orderId, bytesServed, penalty, remaining);
        if (remaining < _quorum) {
            d.status = DisputeStatus.Rebutted;
            address[] memory left = _close(d);
            emit DisputeRebutted(disputeId, d.provider, left.length);
        }
        _burn(penalty);
    }
    // slither-disable-end reentrancy-no-eth

    /// @inheritdoc ISlashingManager
    function executeDispute(uint256 disputeId) external returns (uint256 slashed) {
        Dispute storage d = _open(disputeId);
        uint64 challengeEnds = d.challengeEnds;
        if (block.timestamp < challengeEnds) {
            revert SlashingChallengeWindowOpen(disputeId, challengeEnds, block.timestamp);
        }
        address provider = d.provider;
        uint64 epoch = d.epoch;
        d.status = DisputeStatus.Executed;
        _close(d);
        slashed = _slashProvider(provider, epoch, d.due);
        // No reward: see ISlashingManager (a reward for an unrebuttable claim is a reward for a lie).
        emit DisputeExecuted(disputeId, provider, msg.sender, slashed, 0, 0, slashed);
        _burn(slashed);
        _trust.onSlash(provider, slashed, d.evidenceCid);
    }

    // slither-disable-start reentrancy-no-eth: the only external calls here are to _staking, the immutable Staking
    // set at construction; hold, release, penalize and slash write Staking's storage and call only FlowToken
    // (OpenZeppelin ERC20, no hooks) and the CertificateRegistry, neither of which calls back into this contract.
    /// @dev Ends an open dispute's holds: the provider's `due` and the bond of every accuser not
    /// struck (whose open count drops). Returns those accusers. The caller sets the status.
    function _close(Dispute storage d) private returns (address[] memory left) {
        address provider = d.provider;
        delete _openDisputes[provider][d.epoch];
        uint256 due = d.due;
        uint256 struck = d.struck;
        address[] memory verifiers = d.verifiers;
        uint256 n = verifiers.length;
        left = new address[](d.remaining);
        uint256 k = 0;
        _staking.release(provider, due);
        for (uint256 i; i < n; ++i) {
            // forge-lint: disable-next-line(incorrect-shift)
            if (struck & (1 << i) != 0) continue;
            address v = verifiers[i];
            left[k++] = v;
            _openCount[v] -= 1;
            _staking.release(v, due);
        }
    }
    // slither-disable-end reentrancy-no-eth

    /// @dev The index of `account` among `d`'s accusers not struck, or type(uint256).max.
    function _accuserIndex(Dispute storage d, address account) private view returns (uint256) {
        uint256 struck = d.struck;
        address[] storage verifiers = d.verifiers;
        uint256 n = verifiers.length;
        for (uint256 i; i < n; ++i) {
            // forge-lint: disable-next-line(incorrect-shift)
            if (verifiers[i] == account && struck & (1 << i) == 0) return i;
        }
        return type(uint256).max;
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ISlashingManager
    function heartbeatDigest(Heartbeat calldata h) public view returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("FlowNet Heartbeat"), keccak256("1"), block.chainid, address(_staking)
            )
        );
        bytes32 structHash =
            keccak256(abi.encode(HEARTBEAT_TYPEHASH, h.provider, h.epoch, h.endpointHash, h.load, h.timestamp));
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    /// @inheritdoc ISlashingManager
    function attestationDigest(address provider, uint64 epoch, uint8 kind, string calldata evidenceCid)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(ATTESTATION_TYPEHASH, provider, epoch, kind, keccak256(bytes(evidenceCid))))
        );
    }

    /// @inheritdoc ISlashingManager
    function serviceProofDigest(bytes32 orderId, uint64 epoch, uint256 bytesServed) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(SERVICE_PROOF_TYPEHASH, orderId, epoch, bytesServed)));
    }

    /// @inheritdoc ISlashingManager
    function disputeOf(uint256 disputeId) external view returns (Dispute memory) {
        return _disputes[disputeId];
    }

    /// @inheritdoc ISlashingManager
    function nextDisputeId() external view returns (uint256) {
        return _nextDisputeId;
    }

    /// @inheritdoc ISlashingManager
    function openDisputeOf(address provider, uint64 epoch) external view returns (uint256) {
        return _openDisputes[provider][epoch];
    }

    /// @inheritdoc ISlashingManager
    function isEpochSlashed(address provider, uint64 epoch) external view returns (bool) {
        return _slashedEpochs[provider][epoch];
    }

    /// @inheritdoc ISlashingManager
    function isAttestationUsed(bytes32 digest) external view returns (bool) {
        return _usedAttestations[digest];
    }

    /// @inheritdoc ISlashingManager
    function openDisputesOf(address verifier) external view returns (uint256) {
        return _openCount[verifier];
    }

    /// @inheritdoc ISlashingManager
    function slashedInPeriod(address provider, uint256 periodIndex) external view returns (uint256) {
        return _periodSlashed[provider][periodIndex];
    }

    /// @inheritdoc ISlashingManager
    function currentEpoch() public view returns (uint64) {
        // Safe: epochSeconds >= 1 and block.timestamp fits uint64 for ages.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(block.timestamp / _epochSeconds);
    }

    /// @inheritdoc ISlashingManager
    function config() external view returns (Config memory) {
        return Config({
            challengeWindow: _challengeWindow,
            epochSeconds: _epochSeconds,
            statuteEpochs: _statuteEpochs,
            period: _period,
            capPerPeriod: _capPerPeriod,
            slashBps: _slashBps,
            rewardBps: _rewardBps,
            quorum: _quorum
        });
    }

    /// @inheritdoc ISlashingManager
    function staking() external view returns (address) {
        return address(_staking);
    }

    /// @inheritdoc ISlashingManager
    function market() external view returns (address) {
        return address(_market);
    }

    /// @inheritdoc ISlashingManager
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc ISlashingManager
    function trustRegistry() external view returns (address) {
        return address(_trust);
    }

    // ---------------------------------------------------------------- internals

    // slither-disable-start reentrancy-no-eth: the only external calls here are to _staking, the immutable Staking
    // set at construction; hold, release, penalize and slash write Staking's storage and call only FlowToken
    // (OpenZeppelin ERC20, no hooks) and the CertificateRegistry, neither of which calls back into this contract.
    /// @dev Marks (provider, epoch) slashed and takes min(`amount`, what the period's cap leaves)
    /// through Staking; the tokens arrive here. Refuses when the cap is exhausted.
    function _slashProvider(address provider, uint64 epoch, uint256 amount) private returns (uint256 slashed) {
        uint256 periodIndex = block.timestamp / _period;
        uint256 already = _periodSlashed[provider][periodIndex];
        if (already >= _capPerPeriod) revert SlashingCapReached(provider, periodIndex, already, _capPerPeriod);
        _slashedEpochs[provider][epoch] = true;
        // Safe: already < capPerPeriod.
        uint256 room = _capPerPeriod - already;
        if (amount > room) amount = room;
        // Staking refuses a zero amount; a provider with nothing left is still marked and scored down.
        if (amount != 0) {
            slashed = _staking.slash(provider, amount);
            _periodSlashed[provider][periodIndex] = already + slashed;
        }
    }
    // slither-disable-end reentrancy-no-eth

    function _stakeOf(address account) private view returns (uint256) {
        IStaking.StakeInfo memory s = _staking.stakeOf(account);
        return uint256(s.active) + s.thawing;
    }

    function _burn(uint256 amount) private {
        if (amount != 0) ERC20Burnable(address(_token)).burn(amount);
    }

    /// @dev Refuses an epoch in the future, beyond the statute of limitations, or already slashed.
    function _checkEpoch(address provider, uint64 epoch) private view {
        uint64 current = currentEpoch();
        if (epoch > current) revert SlashingEpochInFuture(epoch, current);
        // Safe: epoch <= current.
        if (current - epoch > _statuteEpochs) revert SlashingEpochExpired(epoch, current, _statuteEpochs);
        if (_slashedEpochs[provider][epoch]) revert SlashingEpochAlreadySlashed(provider, epoch);
    }

    /// @dev Refuses an empty or oversized evidence CID. A CID is only a pointer to the evidence
    /// document: what is single-use is the slash of an epoch and each set of attestations.
    function _checkCid(string calldata evidenceCid) private pure {
        uint256 length = bytes(evidenceCid).length;
        if (length == 0 || length > MAX_CID_LENGTH) revert SlashingInvalidEvidenceCid(length, MAX_CID_LENGTH);
    }

    /// @dev The distinct staked verifiers that signed `digest`, in signature order, and the smallest
    /// unheld stake among them (what each can bond).
    function _checkAttestations(bytes32 digest, bytes[] calldata signatures)
        private
        view
        returns (address[] memory verifiers, uint256 smallestFree)
    {
        uint256 n = signatures.length;
        if (n < _quorum) revert SlashingTooFewAttestations(n, _quorum);
        if (n > MAX_ATTESTATIONS) revert SlashingTooManyAttestations(n, MAX_ATTESTATIONS);
        uint256 minimum = _staking.verifierMinStake();
        verifiers = new address[](n);
        smallestFree = type(uint256).max;
        for (uint256 i; i < n; ++i) {
            address signer = _recover(digest, signatures[i]);
            for (uint256 j; j < i; ++j) {
                if (verifiers[j] == signer) revert SlashingDuplicateVerifier(signer);
            }
            IStaking.StakeInfo memory s = _staking.stakeOf(signer);
            if (s.role != IStaking.Role.Verifier || s.active < minimum || s.thawing != 0) {
                revert SlashingNotStakedVerifier(signer, uint8(s.role), s.active, minimum, s.thawing);
            }
            uint256 open = _openCount[signer];
            if (open >= MAX_OPEN_PER_VERIFIER) revert SlashingTooManyOpenDisputes(signer, open);
            uint256 held = _staking.heldOf(signer);
            if (held >= s.active) revert SlashingVerifierStakeHeld(signer, held);
            // Safe: held < active.
            uint256 free = s.active - held;
            if (free < smallestFree) smallestFree = free;
            verifiers[i] = signer;
        }
    }

    function _open(uint256 disputeId) private view returns (Dispute storage d) {
        d = _disputes[disputeId];
        if (d.status != DisputeStatus.Open) revert SlashingDisputeNotOpen(disputeId, d.status);
    }

    function _checkSigner(bytes32 digest, bytes calldata signature, address expected) private pure {
        address signer = _recover(digest, signature);
        if (signer != expected) revert SlashingWrongSigner(signer, expected);
    }

    /// @dev ecrecover over a 65-byte r‖s‖v signature, refusing malleable (high s) signatures and any
    /// v but 27 or 28.
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address signer) {
        if (signature.length != 65) revert SlashingInvalidSignatureLength(signature.length);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_ORDER) revert SlashingInvalidSignatureS(s);
        if (v != 27 && v != 28) revert SlashingInvalidSignatureV(v);
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert SlashingInvalidSignature(digest);
    }
}
