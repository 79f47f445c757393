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

    address private immutable _staking;

    mapping(bytes32 certHash => Certificate) private _certificates;
    mapping(address owner => bytes32[]) private _active;
    /// @dev Position + 1 of a certificate in its owner's `_active` list; 0 when not in it.
    mapping(bytes32 certHash => uint256) private _activePos;

    /// @param staking_ The only address allowed to call revokeAllOf (the Staking contract). It must
    /// name this registry as its certificateRegistry, or its slashes and unbonds would revoke nothing here.
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
        Certificate storage c = _certificates[certHash];
        // Registration is once per hash, ever: a revoked certificate cannot come back.
        if (c.owner != address(0)) revert CertificateAlreadyRegistered(certHash, c.owner);
        bytes32[] storage active = _active[msg.sender];
        if (active.length >= MAX_ACTIVE) revert CertificateTooManyActive(msg.sender, MAX_ACTIVE);

        c.owner = msg.sender;
        c.keyHash = keyHash;
        c.notAfter = notAfter;
        c.registeredAt = _now();
        active.push(certHash);
        _activePos[certHash] = active.length;
        emit CertificateRegistered(certHash, msg.sender, keyHash, pemCid, notAfter);
    }

    /// @inheritdoc ICertificateRegistry
    function revoke(bytes32 certHash, uint8 reason, uint64 compromisedAt) external {
        if (reason > uint8(RevocationReason.CessationOfOperation)) revert CertificateInvalidReason(reason);
        if (compromisedAt > block.timestamp) revert CertificateInvalidCompromisedAt(compromisedAt, block.timestamp);
        Certificate storage c = _certificates[certHash];
        address owner = c.owner;
        if (owner == address(0)) revert CertificateNotRegistered(certHash);
        if (msg.sender != owner) revert CertificateNotOwner(certHash, msg.sender, owner);
        if (c.revoked) revert CertificateAlreadyRevoked(certHash, c.revokedAt);

        _removeActive(owner, certHash);
        _markRevoked(c, certHash, owner, RevocationReason(reason), compromisedAt);
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
        // At most MAX_ACTIVE iterations: register refuses an owner who already holds that many.
        // Popping from the end keeps every remaining position in _activePos correct.
        for (uint256 i = revoked; i > 0; --i) {
            bytes32 certHash = active[i - 1];
            active.pop();
            delete _activePos[certHash];
            _markRevoked(_certificates[certHash], certHash, owner, RevocationReason(reason), 0);
        }
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICertificateRegistry
    function status(bytes32 certHash) external view returns (Certificate memory) {
        return _certificates[certHash];
    }

    /// @inheritdoc ICertificateRegistry
    function isValid(bytes32 certHash, address owner) external view returns (bool) {
        Certificate storage c = _certificates[certHash];
        return owner != address(0) && c.owner == owner && !c.revoked && c.notAfter > block.timestamp;
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

    function _markRevoked(
        Certificate storage c,
        bytes32 certHash,
        address owner,
        RevocationReason reason,
        uint64 compromisedAt
    ) private {
        uint64 revokedAt = _now();
        c.revoked = true;
        c.revokedAt = revokedAt;
        c.compromisedAt = compromisedAt;
        c.reason = reason;
        emit CertificateRevoked(certHash, owner, reason, revokedAt, compromisedAt);
    }

    /// @dev Swap-and-pop `certHash` out of `owner`'s active list; the caller checked it is in it
    /// (every registered, unrevoked certificate is).
    function _removeActive(address owner, bytes32 certHash) private {
        bytes32[] storage active = _active[owner];
        uint256 index = _activePos[certHash] - 1;
        uint256 last = active.length - 1;
        if (index != last) {
            bytes32 moved = active[last];
            active[index] = moved;
            _activePos[moved] = index + 1;
        }
        active.pop();
        delete _activePos[certHash];
    }

    function _now() private view returns (uint64) {
        // Unix seconds fit in 64 bits for the next 500 billion years.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(block.timestamp);
    }
}
