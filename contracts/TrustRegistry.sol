// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITrustRegistry} from "./interfaces/ITrustRegistry.sol";
import {ISlashingManager} from "./interfaces/ISlashingManager.sol";

/// @title FlowNet trust registry (see ITrustRegistry for the full specification)
contract TrustRegistry is ITrustRegistry {
    /// @notice Highest score.
    uint16 public constant MAX_SCORE = 1000;

    /// @notice What a score reads before anyone set it: the middle of the range, so a new subject
    /// is neither trusted nor distrusted, and a first slash takes it to 250.
    uint16 public constant NEUTRAL_SCORE = 500;

    /// @notice Longest reason CID accepted (a CIDv1 in base32 is 59 characters; leave room).
    uint256 public constant MAX_CID_LENGTH = 128;

    /// @notice Longest rate-limit interval accepted at deployment.
    uint64 public constant MAX_MIN_INTERVAL = 30 days;

    uint8 private constant DOMAINS = 4;

    /// @dev A stored score; `set` tells a score of 0 from one never set.
    struct Score {
        uint16 value;
        bool set;
    }

    address private immutable _slashingManager;
    uint64 private immutable _minInterval;

    mapping(address subject => mapping(uint8 domain => Score)) private _scores;
    mapping(address scorer => mapping(address subject => mapping(uint8 domain => uint64))) private _lastChange;
    mapping(uint8 domain => mapping(address scorer => bool)) private _scorers;
    address[4] private _authorities;
    address[4] private _pending;

    /// @param slashingManager_ The only address allowed to call onSlash. It must name this registry
    /// as its trustRegistry (it is deployed just before, at the nonce before this one).
    /// @param authorities_ The authority of each domain, indexed by Domain (Network, App, OS, Package).
    /// @param minInterval_ Seconds between two changes of the same (subject, domain) by one scorer
    /// (1 s .. 30 days): a constructor parameter so a devnet can use seconds where a public chain
    /// uses an hour or more. It bounds how fast one scorer, even a compromised one, can move a score.
    constructor(address slashingManager_, address[4] memory authorities_, uint64 minInterval_) {
        if (slashingManager_ == address(0)) revert TrustInvalidConfig("slashingManager", 0);
        if (minInterval_ == 0 || minInterval_ > MAX_MIN_INTERVAL) {
            revert TrustInvalidConfig("minInterval", minInterval_);
        }
        for (uint8 d; d < DOMAINS; ++d) {
            if (authorities_[d] == address(0)) revert TrustInvalidConfig("authority", d);
        }
        // The SlashingManager names its registry at deployment; refuse to be a registry it does not call.
        address named = ISlashingManager(slashingManager_).trustRegistry();
        if (named != address(this)) revert TrustInvalidConfig("slashingManager.trustRegistry", uint160(named));
        _slashingManager = slashingManager_;
        _minInterval = minInterval_;
        for (uint8 d; d < DOMAINS; ++d) {
            _authorities[d] = authorities_[d];
            emit AuthorityTransferred(d, address(0), authorities_[d]);
        }
    }

    // ---------------------------------------------------------------- scorers

    /// @inheritdoc ITrustRegistry
    function setScore(address subject, uint8 domain, uint16 score, string calldata reasonCid) external {
        _checkDomain(domain);
        if (subject == address(0)) revert TrustZeroSubject();
        if (score > MAX_SCORE) revert TrustScoreTooHigh(score, MAX_SCORE);
        _checkCid(reasonCid);
        if (!_scorers[domain][msg.sender]) revert TrustNotScorer(domain, msg.sender);
        uint64 last = _lastChange[msg.sender][subject][domain];
        if (last != 0) {
            uint256 next = uint256(last) + _minInterval;
            if (block.timestamp < next) revert TrustRateLimited(msg.sender, subject, domain, next);
        }
        _lastChange[msg.sender][subject][domain] = uint64(block.timestamp);
        _write(subject, domain, score, reasonCid);
    }

    // ---------------------------------------------------------------- slashing manager

    /// @inheritdoc ITrustRegistry
    /// @dev The amount is the SlashingManager's business (its own event carries it): any proven
    /// fault halves the score, even one that found no stake left to take.
    function onSlash(address provider, uint256, string calldata reasonCid) external {
        if (msg.sender != _slashingManager) revert TrustNotSlashingManager(msg.sender, _slashingManager);
        uint8 network = uint8(Domain.Network);
        _write(provider, network, _read(provider, network) / 2, reasonCid);
    }

    // ---------------------------------------------------------------- authorities

    /// @inheritdoc ITrustRegistry
    function setScorer(uint8 domain, address scorer, bool allowed) external {
        _onlyAuthority(domain);
        if (scorer == address(0)) revert TrustZeroScorer();
        _scorers[domain][scorer] = allowed;
        emit ScorerSet(domain, scorer, allowed);
    }

    /// @inheritdoc ITrustRegistry
    /// @dev Two steps: a typo in a single-step transfer would leave the domain without a reachable
    /// authority forever (no one could allow or deny its scorers again); the new authority proves
    /// it controls the address by accepting.
    function transferAuthority(uint8 domain, address pending) external {
        _onlyAuthority(domain);
        _pending[domain] = pending;
        emit AuthorityTransferStarted(domain, msg.sender, pending);
    }

    /// @inheritdoc ITrustRegistry
    function acceptAuthority(uint8 domain) external {
        _checkDomain(domain);
        address pending = _pending[domain];
        if (msg.sender != pending || pending == address(0)) {
            revert TrustNotPendingAuthority(domain, msg.sender, pending);
        }
        address previous = _authorities[domain];
        _authorities[domain] = pending;
        delete _pending[domain];
        emit AuthorityTransferred(domain, previous, pending);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ITrustRegistry
    function scoreOf(address subject, uint8 domain) external view returns (uint16) {
        _checkDomain(domain);
        return _read(subject, domain);
    }

    /// @inheritdoc ITrustRegistry
    function isScored(address subject, uint8 domain) external view returns (bool) {
        _checkDomain(domain);
        return _scores[subject][domain].set;
    }

    /// @inheritdoc ITrustRegistry
    function lastChangedAt(address scorer, address subject, uint8 domain) external view returns (uint64) {
        return _lastChange[scorer][subject][domain];
    }

    /// @inheritdoc ITrustRegistry
    function isScorer(uint8 domain, address scorer) external view returns (bool) {
        return _scorers[domain][scorer];
    }

    /// @inheritdoc ITrustRegistry
    function authority(uint8 domain) external view returns (address) {
        _checkDomain(domain);
        return _authorities[domain];
    }

    /// @inheritdoc ITrustRegistry
    function pendingAuthority(uint8 domain) external view returns (address) {
        _checkDomain(domain);
        return _pending[domain];
    }

    /// @inheritdoc ITrustRegistry
    function slashingManager() external view returns (address) {
        return _slashingManager;
    }

    /// @inheritdoc ITrustRegistry
    function minInterval() external view returns (uint64) {
        return _minInterval;
    }

    // ---------------------------------------------------------------- internals

    function _read(address subject, uint8 domain) private view returns (uint16) {
        Score storage s = _scores[subject][domain];
        return s.set ? s.value : NEUTRAL_SCORE;
    }

    function _write(address subject, uint8 domain, uint16 score, string calldata reasonCid) private {
        uint16 old = _read(subject, domain);
        _scores[subject][domain] = Score({value: score, set: true});
        emit ScoreChanged(subject, domain, msg.sender, old, score, reasonCid);
    }

    function _onlyAuthority(uint8 domain) private view {
        _checkDomain(domain);
        address current = _authorities[domain];
        if (msg.sender != current) revert TrustNotAuthority(domain, msg.sender, current);
    }

    function _checkDomain(uint8 domain) private pure {
        if (domain >= DOMAINS) revert TrustInvalidDomain(domain);
    }

    function _checkCid(string calldata cid) private pure {
        uint256 length = bytes(cid).length;
        if (length == 0 || length > MAX_CID_LENGTH) revert TrustInvalidReasonCid(length, MAX_CID_LENGTH);
    }
}
