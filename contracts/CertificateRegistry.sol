// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICertificateRegistry} from "./interfaces/ICertificateRegistry.sol";
import {IStaking} from "./interfaces/IStaking.sol";

/// @title FlowNet decentralized certificate authority (see ICertificateRegistry for the full specification)
contract CertificateRegistry is ICertificateRegistry {
    /// @notice Longest PEM CID accepted (a CIDv1 in base32 is 59 characters; leave room).
    uint256 public constant MAX_CID_LENGTH = 128;

    /// @notice Most unrevoked certificates one owner may hold; bounds revokeAllOf.
    uint256 public constant MAX_ACTIVE = 8;

    /// @dev One certificate as stored, in two slots: the key hash, then everything else. A revocation
    /// rewrites the second slot, which registration already made non-zero, so it never writes a new
    /// slot. The owner is the mapping key, not a field. Times are unix seconds, which fit in 48 bits
    /// for the next 8 million years.
    struct Record {
        bytes32 keyHash; // non-zero once registered (register refuses a zero key hash)
        uint64 notAfter;
        uint48 registeredAt;
        uint48 revokedAt;
        uint48 compromisedAt;
        RevocationReason reason;
        bool revoked;
        uint8 position; // 1 + the index in the owner's `_active` list; 0 once revoked
    }

    address private immutable _staking;

    mapping(address owner => mapping(bytes32 certHash => Record)) private _records;
    mapping(address owner => bytes32[]) private _active;

    /// @param staking_ The only address allowed to call revokeAllOf (the Staking contract), and the one
    /// whose stake records decide `stakeCounts`. It must name this registry as its
    /// certificateRegistry, or its slashes and unbonds would revoke nothing here.
    constructor(address staking_) {
        if (staking_ == address(0)) revert CertificateInvalidConfig("staking");
        // Staking names its registry at deployment; refuse to be a registry it does not call.
        if (IStaking(staking_).certificateRegistry() != address(this)) {
            revert CertificateInvalidConfig("staking.certificateRegistry");
        }
        _staking = staking_;
    }

    // ---------------------------------------------------------------- owners

    /// @inheritdoc ICertificateRegistry
    function register(bytes32 certHash, bytes32 keyHash, string calldata pemCid, uint64 notAfter) external {
        if (certHash == bytes32(0) || keyHash == bytes32(0)) revert CertificateZeroHash(certHash, keyHash);
        uint256 length = bytes(pemCid).length;
        if (length == 0 || length > MAX_CID_LENGTH) revert CertificateInvalidPemCid(length, MAX_CID_LENGTH);
        if (notAfter <= block.timestamp) revert CertificateInvalidNotAfter(notAfter, block.timestamp);
        // The record lives under msg.sender: another wallet's registration of the same hash is its own
        // record and cannot block or affect this one (see the interface).
        Record storage r = _records[msg.sender][certHash];
        // Registration is once per (owner, hash), ever: a revoked certificate cannot come back.
        if (r.keyHash != bytes32(0)) revert CertificateAlreadyRegistered(certHash, msg.sender);
        bytes32[] storage active = _active[msg.sender];
        uint256 count = active.length;
        if (count >= MAX_ACTIVE) revert CertificateTooManyActive(msg.sender, MAX_ACTIVE);

        active.push(certHash);
        _records[msg.sender][certHash] = Record({
            keyHash: keyHash,
            notAfter: notAfter,
            registeredAt: _now(),
            revokedAt: 0,
            compromisedAt: 0,
            reason: RevocationReason.Unspecified,
            revoked: false,
            // Safe: count < MAX_ACTIVE = 8.
            // forge-lint: disable-next-line(unsafe-typecast)
            position: uint8(count + 1)
        });
        emit CertificateRegistered(certHash, msg.sender, keyHash, pemCid, notAfter);
    }

    /// @inheritdoc ICertificateRegistry
    function revoke(bytes32 certHash, uint8 reason, uint64 compromisedAt) external {
        if (reason > uint8(RevocationReason.CessationOfOperation)) revert CertificateInvalidReason(reason);
        if (compromisedAt > block.timestamp) revert CertificateInvalidCompromisedAt(compromisedAt, block.timestamp);
        mapping(bytes32 => Record) storage records = _records[msg.sender];
        Record storage r = records[certHash];
        if (r.keyHash == bytes32(0)) revert CertificateNotRegistered(certHash, msg.sender);
        if (r.revoked) revert CertificateAlreadyRevoked(certHash, r.revokedAt);

        // Swap-and-pop `certHash` out of the owner's active list (every unrevoked certificate is in it).
        bytes32[] storage active = _active[msg.sender];
        uint256 index = r.position - 1;
        uint256 last = active.length - 1;
        if (index != last) {
            bytes32 moved = active[last];
            active[index] = moved;
            // Safe: index < last < MAX_ACTIVE.
            // forge-lint: disable-next-line(unsafe-typecast)
            records[moved].position = uint8(index + 1);
        }
        active.pop();
        // Safe: compromisedAt <= block.timestamp, which fits in 48 bits.
        // forge-lint: disable-next-line(unsafe-typecast)
        _markRevoked(r, certHash, msg.sender, RevocationReason(reason), uint48(compromisedAt));
    }

    // ---------------------------------------------------------------- staking

    /// @inheritdoc ICertificateRegistry
    function revokeAllOf(address owner, uint8 reason) external returns (uint256 revoked) {
        if (msg.sender != _staking) revert CertificateUnauthorized(msg.sender, _staking);
        if (reason != uint8(RevocationReason.Slashed) && reason != uint8(RevocationReason.Unbonded)) {
            revert CertificateInvalidReason(reason);
        }
        bytes32[] storage active = _active[owner];
        revoked = active.length;
        if (revoked == 0) return 0;
        mapping(bytes32 => Record) storage records = _records[owner];
        // At most MAX_ACTIVE iterations: register refuses an owner who already holds that many.
        // Last first, the order in which popping the list would release them.
        for (uint256 i = revoked; i > 0; --i) {
            bytes32 certHash = active[i - 1];
            _markRevoked(records[certHash], certHash, owner, RevocationReason(reason), 0);
        }
        delete _active[owner];
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICertificateRegistry
    function status(bytes32 certHash, address owner) external view returns (Certificate memory c) {
        Record storage r = _records[owner][certHash];
        if (r.keyHash == bytes32(0)) return c;
        c = Certificate({
            owner: owner,
            keyHash: r.keyHash,
            notAfter: r.notAfter,
            registeredAt: r.registeredAt,
            revoked: r.revoked,
            revokedAt: r.revokedAt,
            compromisedAt: r.compromisedAt,
            reason: r.reason
        });
    }

    /// @inheritdoc ICertificateRegistry
    function isValid(bytes32 certHash, address owner) external view returns (bool) {
        if (owner == address(0)) return false;
        Record storage r = _records[owner][certHash];
        if (r.keyHash == bytes32(0) || r.revoked || r.notAfter <= block.timestamp) return false;
        return _stakeCounts(owner);
    }

    /// @inheritdoc ICertificateRegistry
    function stakeCounts(address owner) external view returns (bool) {
        return _stakeCounts(owner);
    }

    /// @inheritdoc ICertificateRegistry
    function activeCertificates(address owner) external view returns (bytes32[] memory) {
        return _active[owner];
    }

    /// @inheritdoc ICertificateRegistry
    function activeCount(address owner) external view returns (uint256) {
        return _active[owner].length;
    }

    /// @inheritdoc ICertificateRegistry
    function staking() external view returns (address) {
        return _staking;
    }

    // ---------------------------------------------------------------- internals

    /// @dev Writes only the record's second slot (made non-zero by register) and leaves the list to
    /// the caller.
    function _markRevoked(
        Record storage r,
        bytes32 certHash,
        address owner,
        RevocationReason reason,
        uint48 compromisedAt
    ) private {
        uint48 revokedAt = _now();
        r.revoked = true;
        r.revokedAt = revokedAt;
        r.compromisedAt = compromisedAt;
        r.reason = reason;
        r.position = 0;
        emit CertificateRevoked(certHash, owner, reason, revokedAt, compromisedAt);
    }

    /// @dev A role is fixed by an account's first stake, so an account with role None never staked.
    /// Thawing stake is still slashable, so it still counts.
    function _stakeCounts(address owner) private view returns (bool) {
        IStaking.StakeInfo memory s = IStaking(_staking).stakeOf(owner);
        return s.role == IStaking.Role.None || s.active != 0 || s.thawing != 0;
    }

    function _now() private view returns (uint48) {
        // Unix seconds fit in 48 bits for the next 8 million years.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint48(block.timestamp);
    }
}
