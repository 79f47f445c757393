// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "../utils/BaseTest.sol";
import {CertificateRegistry} from "../../CertificateRegistry.sol";
import {ICertificateRegistry} from "../../interfaces/ICertificateRegistry.sol";

/// @notice The only contract the CertificateRegistry invariant campaign calls. Four owners register
/// and revoke certificates, Staking (a pranked address) revokes all of an owner's certificates, and
/// time moves forward. Inputs are bounded so most calls are valid, but every action also sends calls
/// that must be refused (re-registering a known hash, revoking someone else's or an already revoked
/// certificate, reserved reasons, future compromise times, revokeAllOf by a non-Staking caller). The
/// handler predicts each outcome from its ghost model, records any mismatch in `violations`, and
/// never reverts itself (a reverted handler call would discard what it recorded).
contract CertificateRegistryHandler is BaseTest {
    struct GhostCert {
        address owner;
        uint64 notAfter;
        bool revoked;
        uint64 revokedAt;
        uint64 compromisedAt;
        uint8 reason;
        address revokedBy;
    }

    struct Counter {
        uint256 calls;
        uint256 ok;
        uint256 rejected;
    }

    uint256 internal constant N_OWNERS = 4;
    uint256 internal constant MAX_LIFETIME = 30 days;
    uint256 internal constant MAX_WARP = 10 days;
    uint8 internal constant SLASHED = uint8(ICertificateRegistry.RevocationReason.Slashed);
    uint8 internal constant UNBONDED = uint8(ICertificateRegistry.RevocationReason.Unbonded);
    uint8 internal constant LAST_OWNER_REASON = uint8(ICertificateRegistry.RevocationReason.CessationOfOperation);

    CertificateRegistry public immutable registry;
    address public immutable stakingAddr;
    uint256 public immutable maxActive;

    address[] internal _owners;
    uint256 public ghostTime;
    uint256 internal _nonce;

    bytes32[] internal _hashes;
    mapping(bytes32 => GhostCert) internal _ghost;
    bytes32[] internal _revokedHashes;
    mapping(address => uint256) public ghostActive;

    /// @notice Registrations tried by an owner already at MAX_ACTIVE (all must be refused).
    uint256 public registersAtCap;
    /// @notice Calls the model says must fail that succeeded. Must stay 0.
    uint256 public invalidAccepted;
    /// @notice Calls the model says are valid that were refused. Must stay 0.
    uint256 public unexpectedReverts;
    string[] internal _violations;

    string[] internal _actionNames;
    mapping(string => Counter) internal _counters;

    modifier action(string memory name) {
        vm.warp(ghostTime);
        if (_counters[name].calls == 0) _actionNames.push(name);
        _counters[name].calls++;
        _;
    }

    constructor(CertificateRegistry registry_, address stakingAddr_) {
        registry = registry_;
        stakingAddr = stakingAddr_;
        maxActive = registry_.MAX_ACTIVE();
        ghostTime = block.timestamp;
        for (uint256 i; i < N_OWNERS; ++i) {
            _owners.push(address(uint160(0x2000 + i)));
        }
    }

    // ------------------------------------------------------------------ actions

    /// @notice An owner registers a fresh certificate, or (1 in 8) re-registers a known hash, which
    /// must be refused whoever registered or revoked it.
    function register(uint256 ownerSeed, uint256 hashSeed, uint256 lifetime, uint256 cidLength)
        external
        action("register")
    {
        address owner = _owners[ownerSeed % N_OWNERS];
        bool duplicate = hashSeed % 8 == 0 && _hashes.length > 0;
        bytes32 certHash =
            duplicate ? _hashes[(hashSeed >> 8) % _hashes.length] : keccak256(abi.encode("cert", ++_nonce));
        lifetime = bound(lifetime, 1, MAX_LIFETIME);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 notAfter = uint64(block.timestamp + lifetime);
        string memory cid = string(new bytes(bound(cidLength, 1, 128)));
        bool atCap = ghostActive[owner] >= maxActive;
        if (atCap) registersAtCap++;
        bool expectOk = !duplicate && !atCap;

        vm.prank(owner);
        try registry.register(certHash, keccak256(abi.encode(certHash)), cid, notAfter) {
            _counters["register"].ok++;
            if (!expectOk) {
                _invalid("register accepted a known hash or an owner at MAX_ACTIVE");
                return;
            }
            _hashes.push(certHash);
            _ghost[certHash] = GhostCert(owner, notAfter, false, 0, 0, 0, address(0));
            ghostActive[owner]++;
        } catch {
            _counters["register"].rejected++;
            if (expectOk) _unexpected("register refused a valid registration");
        }
    }

    /// @notice Revoke a known certificate. Usually its owner with an owner reason; sometimes another
    /// owner or Staking, a reserved or out-of-range reason, or a compromise time in the future.
    function revoke(uint256 hashSeed, uint256 callerSeed, uint256 reasonSeed, uint256 compromisedSeed)
        external
        action("revoke")
    {
        if (_hashes.length == 0) return;
        // Three times in four take a live certificate (revokeAllOf wipes many), else any known one.
        bytes32 certHash = hashSeed % 4 == 0 ? _hashes[(hashSeed >> 8) % _hashes.length] : _liveHash(hashSeed >> 8);
        GhostCert storage g = _ghost[certHash];
        uint256 pick = callerSeed % 8;
        address caller = pick < 6 ? g.owner : (pick == 6 ? _owners[(callerSeed >> 8) % N_OWNERS] : stakingAddr);
        uint8 reason =
            uint8(reasonSeed % 8 < 6 ? reasonSeed % (LAST_OWNER_REASON + 1) : bound(reasonSeed >> 8, SLASHED, 7));
        uint256 compromisedAt = compromisedSeed % 8 == 0
            ? bound(compromisedSeed >> 8, block.timestamp + 1, block.timestamp + 1 days)
            : (compromisedSeed % 2 == 0 ? 0 : bound(compromisedSeed >> 8, 0, block.timestamp));
        bool expectOk =
            caller == g.owner && !g.revoked && reason <= LAST_OWNER_REASON && compromisedAt <= block.timestamp;

        vm.prank(caller);
        // forge-lint: disable-next-line(unsafe-typecast)
        try registry.revoke(certHash, reason, uint64(compromisedAt)) {
            _counters["revoke"].ok++;
            if (!expectOk) {
                _invalid("revoke accepted a non-owner, a revoked certificate, a reserved reason or a future compromise");
            }
            // Book what happened even when it should not have, so the invariants name the broken property.
            // forge-lint: disable-next-line(unsafe-typecast)
            if (!g.revoked) _markRevoked(certHash, reason, uint64(compromisedAt), caller);
        } catch {
            _counters["revoke"].rejected++;
            if (expectOk) _unexpected("revoke refused a valid revocation");
        }
    }

    /// @notice Staking (7 in 8) or an owner (must be refused) revokes all of an owner's certificates,
    /// usually with Slashed or Unbonded, sometimes with an owner reason (must be refused).
    function revokeAllOf(uint256 ownerSeed, uint256 callerSeed, uint256 reasonSeed) external action("revokeAllOf") {
        address owner = _owners[ownerSeed % N_OWNERS];
        address caller = callerSeed % 8 == 0 ? _owners[(callerSeed >> 8) % N_OWNERS] : stakingAddr;
        uint8 reason =
            uint8(reasonSeed % 8 == 0 ? bound(reasonSeed >> 8, 0, 7) : (reasonSeed % 2 == 0 ? SLASHED : UNBONDED));
        bool expectOk = caller == stakingAddr && (reason == SLASHED || reason == UNBONDED);
        uint256 expectedCount = ghostActive[owner];

        vm.prank(caller);
        try registry.revokeAllOf(owner, reason) returns (uint256 n) {
            _counters["revokeAllOf"].ok++;
            if (!expectOk) _invalid("revokeAllOf accepted a non-Staking caller or an owner reason");
            if (n != expectedCount) _record("revokeAllOf returned a count other than the owner's active certificates");
            for (uint256 i; i < _hashes.length; ++i) {
                GhostCert storage g = _ghost[_hashes[i]];
                if (g.owner == owner && !g.revoked) _markRevoked(_hashes[i], reason, 0, caller);
            }
        } catch {
            _counters["revokeAllOf"].rejected++;
            if (expectOk) _unexpected("revokeAllOf refused Staking");
        }
    }

    /// @notice Time moves forward 1 s ... 10 days (certificates expire).
    function warp(uint256 seconds_) external action("warp") {
        ghostTime += bound(seconds_, 1, MAX_WARP);
        vm.warp(ghostTime);
        _counters["warp"].ok++;
    }

    // ------------------------------------------------------------------ ghost bookkeeping

    /// @dev The first unrevoked hash at or after a random start (any hash when all are revoked).
    function _liveHash(uint256 seed) internal view returns (bytes32) {
        uint256 n = _hashes.length;
        uint256 start = seed % n;
        for (uint256 i; i < n; ++i) {
            bytes32 h = _hashes[(start + i) % n];
            if (!_ghost[h].revoked) return h;
        }
        return _hashes[start];
    }

    function _markRevoked(bytes32 certHash, uint8 reason, uint64 compromisedAt, address by) internal {
        GhostCert storage g = _ghost[certHash];
        g.revoked = true;
        // forge-lint: disable-next-line(unsafe-typecast)
        g.revokedAt = uint64(block.timestamp);
        g.compromisedAt = compromisedAt;
        g.reason = reason;
        g.revokedBy = by;
        ghostActive[g.owner]--;
        _revokedHashes.push(certHash);
        // Re-read at once: the contract must agree with the model right after the call.
        ICertificateRegistry.Certificate memory c = registry.status(certHash);
        if (!c.revoked || c.revokedAt != g.revokedAt || uint8(c.reason) != reason || c.compromisedAt != compromisedAt) {
            _record("status after a revocation differs from the call made");
        }
    }

    function _invalid(string memory message) internal {
        invalidAccepted++;
        _record(message);
    }

    function _unexpected(string memory message) internal {
        unexpectedReverts++;
        _record(message);
    }

    function _record(string memory message) internal {
        _violations.push(message);
    }

    // ------------------------------------------------------------------ views for the invariants

    function owners() external view returns (address[] memory) {
        return _owners;
    }

    function hashes() external view returns (bytes32[] memory) {
        return _hashes;
    }

    function revokedHashes() external view returns (bytes32[] memory) {
        return _revokedHashes;
    }

    function ghostOf(bytes32 certHash) external view returns (GhostCert memory) {
        return _ghost[certHash];
    }

    function violationCount() external view returns (uint256) {
        return _violations.length;
    }

    function firstViolation() external view returns (string memory) {
        return _violations.length == 0 ? "" : _violations[0];
    }

    function actionNames() external view returns (string[] memory) {
        return _actionNames;
    }

    function counter(string memory name) external view returns (Counter memory) {
        return _counters[name];
    }
}
