// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title FlowNet trust registry
/// @notice A trust score in [0, 1000] per (subject, domain), for four domains with separate
/// authorities: Network, App, OS and Package. Each domain has one authority, fixed at deployment and
/// handed on only by a two-step transfer; only it allows and denies the scorers of its domain. An
/// allowed scorer sets a subject's score in its domain with the IPFS CID of its reason, at most once
/// per `minInterval` for the same (subject, domain). A score never set reads as NEUTRAL_SCORE (500).
/// The SlashingManager fixed at deployment halves the Network score of every provider it slashes
/// (rounding down), with the evidence CID as the reason and without rate limit.
/// @dev Every state change emits an event carrying the resulting values, so an indexer never reads
/// storage: ScoreChanged carries the old and new score and the reason, ScorerSet the new allowance,
/// and the authority events both addresses.
interface ITrustRegistry {
    /// @notice The trust domains, by value (the uint8 every function takes).
    enum Domain {
        Network,
        App,
        OS,
        Package
    }

    /// @notice `scorer` changed `subject`'s score in `domain` from `oldScore` to `newScore` (the
    /// SlashingManager is the scorer of slash-driven changes); `reasonCid` names the reason.
    /// `oldScore` is NEUTRAL_SCORE when the score was never set.
    event ScoreChanged(
        address indexed subject,
        uint8 indexed domain,
        address indexed scorer,
        uint16 oldScore,
        uint16 newScore,
        string reasonCid
    );

    /// @notice The authority of `domain` allowed (`allowed` true) or denied `scorer`.
    event ScorerSet(uint8 indexed domain, address indexed scorer, bool allowed);

    /// @notice The authority `current` of `domain` offered its authority to `pending` (the zero
    /// address cancels an offer).
    event AuthorityTransferStarted(uint8 indexed domain, address indexed current, address indexed pending);

    /// @notice The authority of `domain` passed from `previous` to `next` (at deployment `previous`
    /// is the zero address).
    event AuthorityTransferred(uint8 indexed domain, address previous, address next);

    /// @notice `domain` is not one of the four domains (0..3).
    error TrustInvalidDomain(uint8 domain);

    /// @notice `score` is above MAX_SCORE (`maxScore`).
    error TrustScoreTooHigh(uint16 score, uint16 maxScore);

    /// @notice The reason CID is empty or longer than `maxLength` bytes.
    error TrustInvalidReasonCid(uint256 length, uint256 maxLength);

    /// @notice The subject is the zero address.
    error TrustZeroSubject();

    /// @notice `caller` is not an allowed scorer of `domain`.
    error TrustNotScorer(uint8 domain, address caller);

    /// @notice `caller` is not the authority of `domain` (`authority` is).
    error TrustNotAuthority(uint8 domain, address caller, address authority);

    /// @notice `caller` is not the pending authority of `domain` (`pending` is).
    error TrustNotPendingAuthority(uint8 domain, address caller, address pending);

    /// @notice `scorer` changed `subject`'s score in `domain` too recently: next allowed at `nextAllowedAt`.
    error TrustRateLimited(address scorer, address subject, uint8 domain, uint256 nextAllowedAt);

    /// @notice `caller` is not the SlashingManager (`slashingManager`).
    error TrustNotSlashingManager(address caller, address slashingManager);

    /// @notice A scorer address is the zero address.
    error TrustZeroScorer();

    /// @notice A constructor argument is invalid; `name` says which and `value` is what was given
    /// (an address as a number).
    error TrustInvalidConfig(string name, uint256 value);

    /// @notice Allowed scorer of `domain` only: set `subject`'s score in `domain` to `score`
    /// (0..MAX_SCORE) for the reason stored at IPFS `reasonCid` (non-empty). A scorer changes a given
    /// (subject, domain) at most once per `minInterval` seconds.
    function setScore(address subject, uint8 domain, uint16 score, string calldata reasonCid) external;

    /// @notice SlashingManager only: `provider` was slashed `amount` for the evidence at `reasonCid`;
    /// its Network score is halved (rounding down; from NEUTRAL_SCORE when never set). Not rate limited.
    function onSlash(address provider, uint256 amount, string calldata reasonCid) external;

    /// @notice Authority of `domain` only: allow (`allowed` true) or deny `scorer` in `domain`.
    function setScorer(uint8 domain, address scorer, bool allowed) external;

    /// @notice Authority of `domain` only: offer the authority to `pending`; it takes over when it
    /// calls acceptAuthority. A new offer replaces the previous one; the zero address cancels it.
    function transferAuthority(uint8 domain, address pending) external;

    /// @notice Pending authority of `domain` only: take over the authority of `domain`.
    function acceptAuthority(uint8 domain) external;

    /// @notice `subject`'s score in `domain` (NEUTRAL_SCORE if never set).
    function scoreOf(address subject, uint8 domain) external view returns (uint16);

    /// @notice Whether `subject`'s score in `domain` was ever set (by a scorer or a slash).
    function isScored(address subject, uint8 domain) external view returns (bool);

    /// @notice When `scorer` last changed `subject`'s score in `domain` (0 if never).
    function lastChangedAt(address scorer, address subject, uint8 domain) external view returns (uint64);

    /// @notice Whether `scorer` is an allowed scorer of `domain`.
    function isScorer(uint8 domain, address scorer) external view returns (bool);

    /// @notice The authority of `domain`.
    function authority(uint8 domain) external view returns (address);

    /// @notice The address `domain`'s authority offered the authority to (zero if none).
    function pendingAuthority(uint8 domain) external view returns (address);

    /// @notice The only address that may call onSlash.
    function slashingManager() external view returns (address);

    /// @notice Seconds between two changes of the same (subject, domain) by the same scorer.
    function minInterval() external view returns (uint64);
}
