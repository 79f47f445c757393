// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title FlowNet staking
/// @notice Providers and verifiers bond FlowToken here. Providers also publish their offer (price per
/// GiB) and the IPFS CID of their signed metadata. Unbonding goes through a thawing period; stake is
/// slashable only by the slasher fixed at deployment; a provider's stake is locked by the market in
/// proportion to the value of its open orders, so it cannot leave while it owes service.
/// A slash, or a withdrawal that leaves an account with nothing bonded, revokes every certificate
/// the account holds in the CertificateRegistry fixed at deployment.
/// The slasher can also hold part of an account's stake while a dispute about it is open: held stake
/// stays slashable (it cannot be withdrawn) until the slasher releases it, so stake that was
/// slashable when a dispute opened is still there when the dispute is executed or rebutted.
/// @dev Every state change emits an event carrying the resulting totals, so an indexer never reads
/// storage.
interface IStaking {
    /// @notice What an account stakes as. Fixed by its first stake.
    enum Role {
        None,
        Provider,
        Verifier
    }

    /// @notice One account's stake.
    /// @param active Bonded stake: slashable, and (for a provider) lockable by open orders.
    /// @param locked Part of `active` that backs open orders; it cannot be unstaked.
    /// @param thawEnd When `thawing` becomes withdrawable (unix seconds); 0 when nothing thaws.
    /// @param thawing Stake on its way out: still slashable, no longer lockable.
    /// @param pricePerGiB The provider's current offer in token units per GiB; 0 means no offer.
    /// @param role What the account stakes as.
    struct StakeInfo {
        uint96 active;
        uint96 locked;
        uint64 thawEnd;
        uint96 thawing;
        uint96 pricePerGiB;
        Role role;
    }

    /// @notice `account` bonded `amount` more as `role`; its active stake is now `active`.
    event Staked(address indexed account, Role role, uint256 amount, uint256 active);

    /// @notice `account` started thawing `amount`; `active` and `thawing` are its new totals and
    /// `thawEnd` is when the whole thawing total becomes withdrawable.
    event UnstakeRequested(address indexed account, uint256 amount, uint256 active, uint256 thawing, uint64 thawEnd);

    /// @notice `account` withdrew `amount` of thawed stake to itself.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice `provider` published an offer: price per GiB (0 withdraws the offer) and metadata CID.
    event OfferPublished(address indexed provider, uint256 pricePerGiB, string metadataCid);

    /// @notice The market locked `amount` of `provider`'s stake for an order; `locked` is the new total.
    event StakeLocked(address indexed provider, uint256 amount, uint256 locked);

    /// @notice The market released `amount` of `provider`'s locked stake; `locked` is the new total.
    event StakeUnlocked(address indexed provider, uint256 amount, uint256 locked);

    /// @notice The slasher took `fromActive + fromThawing` of `account`'s stake; `active` and
    /// `thawing` are the new totals. The tokens went to the slasher.
    event Slashed(
        address indexed account,
        address indexed slasher,
        uint256 fromActive,
        uint256 fromThawing,
        uint256 active,
        uint256 thawing
    );

    /// @notice The slasher held `amount` more of `account`'s stake for an open dispute; `held` is the
    /// new total. Held stake cannot be withdrawn.
    event StakeHeld(address indexed account, uint256 amount, uint256 held);

    /// @notice The slasher released `amount` of `account`'s held stake; `held` is the new total.
    event StakeReleased(address indexed account, uint256 amount, uint256 held);

    /// @notice An amount argument was zero.
    error StakingZeroAmount();

    /// @notice `role` is not a role one can stake as, or differs from the account's existing role.
    error StakingWrongRole(address account, Role role, Role expected);

    /// @notice The account's stake after the operation would be below the minimum for its role.
    error StakingBelowMinimum(address account, uint256 stake, uint256 minimum);

    /// @notice An amount does not fit the 96-bit field that stores it.
    error StakingAmountTooLarge(uint256 amount);

    /// @notice `account` asked to unstake `amount` but only `available` is unlocked and active.
    error StakingInsufficientUnlockedStake(address account, uint256 amount, uint256 available);

    /// @notice `account` has nothing thawing to withdraw.
    error StakingNothingToWithdraw(address account);

    /// @notice `account`'s stake is still thawing until `thawEnd`; it is `now`.
    error StakingStillThawing(address account, uint64 thawEnd, uint256 now);

    /// @notice The metadata CID is empty or longer than `maxLength` bytes.
    error StakingInvalidMetadataCid(uint256 length, uint256 maxLength);

    /// @notice `caller` is not the address allowed to call this function (`allowed`).
    error StakingUnauthorized(address caller, address allowed);

    /// @notice `provider` cannot take an order: it is not a provider, has no offer, or is below the minimum.
    error StakingProviderUnavailable(address provider);

    /// @notice The market asked to release more than is locked.
    error StakingUnlockExceedsLocked(address provider, uint256 amount, uint256 locked);

    /// @notice The slasher asked to hold `amount` of `account`'s stake but only `free` (active +
    /// thawing - held) is not held already.
    error StakingHoldExceedsStake(address account, uint256 amount, uint256 free);

    /// @notice The slasher asked to release more than is held.
    error StakingReleaseExceedsHeld(address account, uint256 amount, uint256 held);

    /// @notice All of `account`'s thawed stake (`thawing`) is held for open disputes (`held` in total,
    /// `active` of it covered by active stake): nothing can be withdrawn until they end.
    error StakingWithdrawalHeld(address account, uint256 thawing, uint256 held, uint256 active);

    /// @notice A constructor argument is invalid; `name` says which.
    error StakingInvalidConfig(string name);

    /// @notice Bond `amount` tokens (pulled with transferFrom) as `role`. The active stake after the
    /// call must reach the role's minimum (also for a top-up after a slash); an account keeps its role
    /// for life.
    function stake(Role role, uint256 amount) external;

    /// @notice Start thawing `amount` of your unlocked active stake. The thaw clock of your whole
    /// thawing total restarts; only you can call this for your stake, so no one else can reset it.
    /// The remaining active stake must be zero or at least the role's minimum.
    function requestUnstake(uint256 amount) external;

    /// @notice Send your thawed stake to you once the thawing period is over, except the part held for
    /// open disputes that your active stake does not cover (it stays thawing, withdrawable once
    /// released). If you then have nothing bonded at all (a full unbond), every certificate you hold in
    /// the certificate registry is revoked with reason Unbonded.
    function withdraw() external returns (uint256 amount);

    /// @notice Publish your offer as a provider. `pricePerGiB` 0 withdraws the offer (no new orders).
    function setOffer(uint256 pricePerGiB, string calldata metadataCid) external;

    /// @notice Slasher only: take up to `amount` from `account`, active stake first, then thawing;
    /// the tokens go to the slasher. Returns what was actually taken. When anything was taken, every
    /// certificate `account` holds in the certificate registry is revoked with reason Slashed.
    function slash(address account, uint256 amount) external returns (uint256 slashed);

    /// @notice Slasher only: take up to `amount` from `account` like `slash` (same `Slashed` event),
    /// but leave its certificates alone. For a verifier's forfeited dispute bond: a wrong accusation
    /// says nothing about the TLS identities it holds, and revoking them would let whoever rebuts
    /// pay for up to 8 revocations per accuser.
    function penalize(address account, uint256 amount) external returns (uint256 penalized);

    /// @notice Slasher only: hold `amount` more of `account`'s stake (active + thawing - held must
    /// cover it) so that it cannot be withdrawn while a dispute is open.
    function hold(address account, uint256 amount) external;

    /// @notice Slasher only: release `amount` of `account`'s held stake.
    function release(address account, uint256 amount) external;

    /// @notice Market only: lock `amount` of `provider`'s unlocked active stake for a new order and
    /// return the provider's current price per GiB.
    function lockForOrder(address provider, uint256 amount) external returns (uint256 pricePerGiB);

    /// @notice Market only: release `amount` of `provider`'s locked stake when an order ends.
    function unlock(address provider, uint256 amount) external;

    /// @notice The stake record of `account`.
    function stakeOf(address account) external view returns (StakeInfo memory);

    /// @notice Stake of `account` held for open disputes (it may exceed active + thawing after a slash).
    function heldOf(address account) external view returns (uint256);

    /// @notice The metadata CID `provider` last published ("" if none).
    function metadataCid(address provider) external view returns (string memory);

    /// @notice Active stake minus locked stake (0 if a slash left less than is locked).
    function unlockedStake(address account) external view returns (uint256);

    /// @notice The token staked here.
    function token() external view returns (address);

    /// @notice The only address that may slash.
    function slasher() external view returns (address);

    /// @notice The only address that may lock and unlock stake (the BandwidthMarket).
    function market() external view returns (address);

    /// @notice The CertificateRegistry whose certificates of an account are revoked when the account
    /// is slashed or fully unbonds.
    function certificateRegistry() external view returns (address);

    /// @notice Seconds a requested unstake thaws before it can be withdrawn.
    function thawPeriod() external view returns (uint64);

    /// @notice Minimum active stake of a provider.
    function providerMinStake() external view returns (uint256);

    /// @notice Minimum active stake of a verifier.
    function verifierMinStake() external view returns (uint256);
}
