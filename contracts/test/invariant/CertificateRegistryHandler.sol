// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BaseTest} from "../utils/BaseTest.sol";
import {RegistryNamingStub} from "../utils/RegistryNamingStub.sol";
import {CertificateRegistry} from "../../CertificateRegistry.sol";
import {ICertificateRegistry} from "../../interfaces/ICertificateRegistry.sol";
import {IStaking} from "../../interfaces/IStaking.sol";

/// @notice The only contract the CertificateRegistry invariant campaign calls. Four owners register
/// and revoke certificates, Staking (a pranked address) revokes all of an owner's certificates, the
/// owners' stake changes (through the stub standing in for Staking), and time moves forward. Records
/// are per (owner, hash): owners often register a hash another owner registered (a front-runner's
/// copy), which must be accepted and must leave the other owner's record alone. Inputs are bounded
/// so most calls are valid, but every action also sends calls that must be refused (re-registering
/// one's own known hash, revoking a hash one never registered or already revoked, reserved reasons,
/// future compromise times, revokeAllOf by a non-Staking caller). The handler predicts each outcome
/// from its ghost model, records any mismatch in `violations`, and never reverts itself (a reverted
/// handler call would discard what it recorded).
contract CertificateRegistryHandler is BaseTest {
    struct GhostCert {
        address owner;
        bytes32 certHash;
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

    /// @dev Every hash any owner registered (the pool duplicates are drawn from).
    bytes32[] internal _hashes;
    mapping(bytes32 => bool) internal _inPool;
    /// @dev Every (owner, hash) record, by `recordKey`.
    bytes32[] internal _records;
    mapping(bytes32 key => GhostCert) internal _ghost;
    bytes32[] internal _revokedRecords;
    mapping(address => uint256) public ghostActive;
    /// @notice Whether the owner's stake lets its certificates count (never staked, or bonded).
    mapping(address => bool) public ghostStakeCounts;

    /// @notice Registrations tried by an owner already at MAX_ACTIVE (all must be refused).
    uint256 public registersAtCap;
    /// @notice Registrations of a hash another owner registered first (all must be accepted, below the cap).
    uint256 public copiesRegistered;
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
            address owner = address(uint160(0x2000 + i));
            _owners.push(owner);
            ghostStakeCounts[owner] = true; // never staked: a client
        }
    }

    /// @notice The key of `owner`'s record of `certHash` in the model.
    function recordKey(address owner, bytes32 certHash) public pure returns (bytes32) {
        return keccak256(abi.encode(owner, certHash));
    }

    // ------------------------------------------------------------------ actions

    /// @notice An owner registers a fresh certificate; one time in four a hash from the pool (one
    /// another owner registered: must be accepted; one of its own: must be refused, revoked or not).
    function register(uint256 ownerSeed, uint256 hashSeed, uint256 lifetime, uint256 cidLength)
        external
        action("register")
    {
        address owner = _owners[ownerSeed % N_OWNERS];
        bool fromPool = hashSeed % 4 == 0 && _hashes.length > 0;
        bytes32 certHash =
            fromPool ? _hashes[(hashSeed >> 8) % _hashes.length] : keccak256(abi.encode("cert", ++_nonce));
        bytes32 key = recordKey(owner, certHash);
        bool own = _ghost[key].owner != address(0);
        lifetime = bound(lifetime, 1, MAX_LIFETIME);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 notAfter = uint64(block.timestamp + lifetime);
        string memory cid = string(new bytes(bound(cidLength, 1, 128)));
        bool atCap = ghostActive[owner] >= maxActive;
        if (atCap) registersAtCap++;
        bool expectOk = !own && !atCap;

        vm.prank(owner);
        try registry.register(certHash, keccak256(abi.encode(owner, certHash)), cid, notAfter) {
            _counters["register"].ok++;
            if (!expectOk) {
                _invalid("register accepted an owner's known hash or an owner at MAX_ACTIVE");
                return;
            }
            if (fromPool) copiesRegistered++;
            if (!_inPool[certHash]) {
                _inPool[certHash] = true;
                _hashes.push(certHash);
            }
            _records.push(key);
            _ghost[key] = GhostCert(owner, certHash, notAfter, false, 0, 0, 0, address(0));
            ghostActive[owner]++;
        } catch {
            _counters["register"].rejected++;
            if (expectOk) _unexpected("register refused a valid registration (another owner's hash included)");
        }
    }

    /// @notice Revoke a known record's hash. Usually as its owner with an owner reason; sometimes as
    /// another owner (who revokes its own record of that hash, if it has one) or as Staking, with a
    /// reserved or out-of-range reason, or a compromise time in the future.
    function revoke(uint256 recordSeed, uint256 callerSeed, uint256 reasonSeed, uint256 compromisedSeed)
        external
        action("revoke")
    {
        if (_records.length == 0) return;
        // Three times in four take a live record (revokeAllOf wipes many), else any known one.
        bytes32 picked =
            recordSeed % 4 == 0 ? _records[(recordSeed >> 8) % _records.length] : _liveRecord(recordSeed >> 8);
        bytes32 certHash = _ghost[picked].certHash;
        uint256 pick = callerSeed % 8;
        address caller =
            pick < 6 ? _ghost[picked].owner : (pick == 6 ? _owners[(callerSeed >> 8) % N_OWNERS] : stakingAddr);
        bytes32 key = recordKey(caller, certHash);
        GhostCert storage g = _ghost[key];
        uint8 reason =
            uint8(reasonSeed % 8 < 6 ? reasonSeed % (LAST_OWNER_REASON + 1) : bound(reasonSeed >> 8, SLASHED, 7));
        uint256 compromisedAt = compromisedSeed % 8 == 0
            ? bound(compromisedSeed >> 8, block.timestamp + 1, block.timestamp + 1 days)
            : (compromisedSeed % 2 == 0 ? 0 : bound(compromisedSeed >> 8, 0, block.timestamp));
        bool expectOk =
            g.owner == caller && !g.revoked && reason <= LAST_OWNER_REASON && compromisedAt <= block.timestamp;

        vm.prank(caller);
        // forge-lint: disable-next-line(unsafe-typecast)
        try registry.revoke(certHash, reason, uint64(compromisedAt)) {
            _counters["revoke"].ok++;
            if (!expectOk) {
                _invalid("revoke accepted an unknown record, a revoked one, a reserved reason or a future compromise");
            }
            // Book what happened even when it should not have, so the invariants name the broken property.
            // forge-lint: disable-next-line(unsafe-typecast)
            if (g.owner == caller && !g.revoked) _markRevoked(key, reason, uint64(compromisedAt), caller);
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
            for (uint256 i; i < _records.length; ++i) {
                GhostCert storage g = _ghost[_records[i]];
                if (g.owner == owner && !g.revoked) _markRevoked(_records[i], reason, 0, caller);
            }
        } catch {
            _counters["revokeAllOf"].rejected++;
            if (expectOk) _unexpected("revokeAllOf refused Staking");
        }
    }

    /// @notice An owner's stake changes: it becomes a client (never staked), or a provider or verifier
    /// with active stake, thawing stake, or nothing bonded.
    function setStake(uint256 ownerSeed, uint256 kindSeed) external action("setStake") {
        address owner = _owners[ownerSeed % N_OWNERS];
        uint256 kind = kindSeed % 4;
        IStaking.Role role = kind == 0
            ? IStaking.Role.None
            : ((kindSeed >> 8) % 2 == 0 ? IStaking.Role.Provider : IStaking.Role.Verifier);
        uint96 active = kind == 1 ? 1_000e18 : 0;
        uint96 thawing = kind == 2 ? 500e18 : 0;
        RegistryNamingStub(stakingAddr).setStake(owner, role, active, thawing);
        ghostStakeCounts[owner] = kind != 3;
        _counters["setStake"].ok++;
    }

    /// @notice Time moves forward 1 s ... 10 days (certificates expire).
    function warp(uint256 seconds_) external action("warp") {
        ghostTime += bound(seconds_, 1, MAX_WARP);
        vm.warp(ghostTime);
        _counters["warp"].ok++;
    }

    // ------------------------------------------------------------------ ghost bookkeeping

    /// @dev The first unrevoked record at or after a random start (any record when all are revoked).
    function _liveRecord(uint256 seed) internal view returns (bytes32) {
        uint256 n = _records.length;
        uint256 start = seed % n;
        for (uint256 i; i < n; ++i) {
            bytes32 key = _records[(start + i) % n];
            if (!_ghost[key].revoked) return key;
        }
        return _records[start];
    }

    function _markRevoked(bytes32 key, uint8 reason, uint64 compromisedAt, address by) internal {
        GhostCert storage g = _ghost[key];
        g.revoked = true;
        // forge-lint: disable-next-line(unsafe-typecast)
        g.revokedAt = uint64(block.timestamp);
        g.compromisedAt = compromisedAt;
        g.reason = reason;
        g.revokedBy = by;
        ghostActive[g.owner]--;
        _revokedRecords.push(key);
        // Re-read at once: the contract must agree with the model right after the call.
        ICertificateRegistry.Certificate memory c = registry.status(g.certHash, g.owner);
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

    /// @notice Every hash any owner registered.
    function hashes() external view returns (bytes32[] memory) {
        return _hashes;
    }

    /// @notice Every (owner, hash) record, by `recordKey`.
    function records() external view returns (bytes32[] memory) {
        return _records;
    }

    function revokedRecords() external view returns (bytes32[] memory) {
        return _revokedRecords;
    }

    /// @notice The model of `owner`'s record of `certHash` (all zero if it never registered it).
    function ghostOf(address owner, bytes32 certHash) external view returns (GhostCert memory) {
        return _ghost[recordKey(owner, certHash)];
    }

    function ghostByKey(bytes32 key) external view returns (GhostCert memory) {
        return _ghost[key];
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
