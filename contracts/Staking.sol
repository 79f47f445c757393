// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {ICertificateRegistry} from "./interfaces/ICertificateRegistry.sol";

/// @title FlowNet staking (see IStaking for the full specification)
contract Staking is IStaking {
    using SafeERC20 for IERC20;

    /// @notice Longest metadata CID accepted (a CIDv1 in base32 is 59 characters; leave room).
    uint256 public constant MAX_CID_LENGTH = 128;

    /// @notice Longest thawing period accepted at deployment; keeps every thawEnd far inside uint64.
    uint64 public constant MAX_THAW_PERIOD = 365 days;

    IERC20 private immutable _token;
    address private immutable _slasher;
    address private immutable _market;
    address private immutable _certificateRegistry;
    uint64 private immutable _thawPeriod;
    uint96 private immutable _providerMinStake;
    uint96 private immutable _verifierMinStake;

    /// @dev One account's stake as stored. Slot 0 holds what staking, unstaking, withdrawing and
    /// slashing read and write, so each of them touches one slot (a first stake writes one new slot,
    /// a withdrawal reads and writes one); slot 1 holds what the market and offers use. StakeInfo
    /// (the view) carries the same values. thawEnd fits in 48 bits: it is at most a year after now.
    struct Account {
        // slot 0
        uint96 active;
        uint96 thawing;
        uint48 thawEnd;
        Role role;
        // False means nothing is held (`_held` is 0), so withdraw need not read `_held`. Set by hold;
        // cleared by withdraw once it finds nothing held (release leaves it, to keep disputes' ends
        // from writing this slot).
        bool mayBeHeld;
        // slot 1
        uint96 locked;
        uint96 pricePerGiB;
    }

    mapping(address account => Account) private _accounts;
    mapping(address provider => string) private _metadataCids;
    mapping(address account => uint256) private _held;

    /// @param token_ The staked token.
    /// @param slasher_ The only address allowed to slash (the slashing contract).
    /// @param market_ The only address allowed to lock stake (the BandwidthMarket; its address can be
    /// computed before it is deployed, which keeps both references immutable).
    /// @param certificateRegistry_ The CertificateRegistry whose certificates of an account are revoked
    /// on a slash or a full unbond; like the market, deployed after Staking at a precomputed address
    /// (its constructor checks that Staking names it).
    /// @param thawPeriod_ Seconds between an unstake request and its withdrawal; at least the dispute window.
    constructor(
        address token_,
        address slasher_,
        address market_,
        address certificateRegistry_,
        uint64 thawPeriod_,
        uint96 providerMinStake_,
        uint96 verifierMinStake_
    ) {
        if (token_ == address(0)) revert StakingInvalidConfig("token");
        if (slasher_ == address(0)) revert StakingInvalidConfig("slasher");
        if (market_ == address(0)) revert StakingInvalidConfig("market");
        // Two different contracts, hence two different addresses: equal ones mean a wrong nonce.
        if (certificateRegistry_ == address(0) || certificateRegistry_ == market_) {
            revert StakingInvalidConfig("certificateRegistry");
        }
        if (thawPeriod_ == 0 || thawPeriod_ > MAX_THAW_PERIOD) revert StakingInvalidConfig("thawPeriod");
        if (providerMinStake_ == 0) revert StakingInvalidConfig("providerMinStake");
        if (verifierMinStake_ == 0) revert StakingInvalidConfig("verifierMinStake");
        _token = IERC20(token_);
        _slasher = slasher_;
        _market = market_;
        _certificateRegistry = certificateRegistry_;
        _thawPeriod = thawPeriod_;
        _providerMinStake = providerMinStake_;
        _verifierMinStake = verifierMinStake_;
    }

    // ---------------------------------------------------------------- stakers

    /// @inheritdoc IStaking
    function stake(Role role, uint256 amount) external {
        if (amount == 0) revert StakingZeroAmount();
        Account storage s = _accounts[msg.sender];
        Role current = s.role;
        if (role == Role.None || (current != Role.None && role != current)) {
            revert StakingWrongRole(msg.sender, role, current == Role.None ? Role.Provider : current);
        }
        uint256 active = uint256(s.active) + amount;
        if (active > type(uint96).max) revert StakingAmountTooLarge(active);
        uint256 minimum = _minimum(role);
        if (active < minimum) revert StakingBelowMinimum(msg.sender, active, minimum);

        // forge-lint: disable-next-line(unsafe-typecast)
        s.active = uint96(active);
        if (current == Role.None) s.role = role;
        emit Staked(msg.sender, role, amount, active);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IStaking
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert StakingZeroAmount();
        Account storage s = _accounts[msg.sender];
        uint256 available = _unlocked(s.active, s.locked);
        if (amount > available) revert StakingInsufficientUnlockedStake(msg.sender, amount, available);
        // Safe: amount <= available <= active.
        uint256 active = s.active - amount;
        uint256 minimum = _minimum(s.role);
        if (active != 0 && active < minimum) revert StakingBelowMinimum(msg.sender, active, minimum);
        uint256 thawing = uint256(s.thawing) + amount;
        // Unreachable with FlowToken (its supply fits in uint96); guards a token with a larger supply.
        if (thawing > type(uint96).max) revert StakingAmountTooLarge(thawing);
        // Safe: unix seconds fit in 48 bits for 8 million years, and _thawPeriod <= MAX_THAW_PERIOD.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint48 thawEnd = uint48(block.timestamp + _thawPeriod);

        // forge-lint: disable-next-line(unsafe-typecast)
        s.active = uint96(active);
        // forge-lint: disable-next-line(unsafe-typecast)
        s.thawing = uint96(thawing);
        s.thawEnd = thawEnd;
        emit UnstakeRequested(msg.sender, amount, active, thawing, thawEnd);
    }

    /// @inheritdoc IStaking
    function withdraw() external returns (uint256 amount) {
        Account storage s = _accounts[msg.sender];
        uint256 thawing = s.thawing;
        if (thawing == 0) revert StakingNothingToWithdraw(msg.sender);
        uint48 thawEnd = s.thawEnd;
        if (block.timestamp < thawEnd) revert StakingStillThawing(msg.sender, thawEnd, block.timestamp);
        uint256 active = s.active;
        uint256 keep = 0;
        if (s.mayBeHeld) {
            // Held stake must stay in the contract; active stake covers it first, thawed stake the rest.
            uint256 held = _held[msg.sender];
            keep = held > active ? held - active : 0;
            if (keep >= thawing) revert StakingWithdrawalHeld(msg.sender, thawing, held, active);
            if (held == 0) s.mayBeHeld = false;
        }
        // Safe: keep < thawing.
        amount = thawing - keep;

        // forge-lint: disable-next-line(unsafe-typecast)
        s.thawing = uint96(keep);
        // The kept part has thawed already: its thawEnd stays, so it is withdrawable once released.
        if (keep == 0) s.thawEnd = 0;
        emit Withdrawn(msg.sender, amount);
        // Nothing thaws any more; with no active stake either the account has fully unbonded. `active`
        // came with the slot read above, so the check is free and a partial withdrawal makes no call.
        if (keep == 0 && active == 0) {
            _revokeCertificates(msg.sender, ICertificateRegistry.RevocationReason.Unbonded);
        }
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IStaking
    function setOffer(uint256 pricePerGiB, string calldata metadataCid_) external {
        Account storage s = _accounts[msg.sender];
        if (s.role != Role.Provider) revert StakingWrongRole(msg.sender, s.role, Role.Provider);
        if (pricePerGiB > type(uint96).max) revert StakingAmountTooLarge(pricePerGiB);
        uint256 length = bytes(metadataCid_).length;
        if (length == 0 || length > MAX_CID_LENGTH) revert StakingInvalidMetadataCid(length, MAX_CID_LENGTH);

        // forge-lint: disable-next-line(unsafe-typecast)
        s.pricePerGiB = uint96(pricePerGiB);
        _metadataCids[msg.sender] = metadataCid_;
        emit OfferPublished(msg.sender, pricePerGiB, metadataCid_);
    }

    // ---------------------------------------------------------------- slasher and market

    /// @inheritdoc IStaking
    function slash(address account, uint256 amount) external returns (uint256 slashed) {
        slashed = _take(account, amount);
        // Any actual slash, even a partial one, revokes all the account's certificates: it was caught
        // misbehaving, so peers must stop trusting the TLS identities it published. It may register
        // new ones afterwards (under new hashes) if it still has stake. Nothing taken means nothing
        // happened, so the slasher cannot revoke the certificates of an address that has no stake.
        if (slashed != 0) {
            _revokeCertificates(account, ICertificateRegistry.RevocationReason.Slashed);
            _token.safeTransfer(msg.sender, slashed);
        }
    }

    /// @inheritdoc IStaking
    function penalize(address account, uint256 amount) external returns (uint256 penalized) {
        penalized = _take(account, amount);
        if (penalized != 0) _token.safeTransfer(msg.sender, penalized);
    }

    /// @inheritdoc IStaking
    function hold(address account, uint256 amount) external {
        if (msg.sender != _slasher) revert StakingUnauthorized(msg.sender, _slasher);
        if (amount == 0) revert StakingZeroAmount();
        Account storage s = _accounts[account];
        uint256 total = uint256(s.active) + s.thawing;
        uint256 held = _held[account];
        uint256 free = total > held ? total - held : 0;
        if (amount > free) revert StakingHoldExceedsStake(account, amount, free);
        // Safe: held + amount <= total < 2^97.
        held += amount;
        _held[account] = held;
        // Shares the slot just read; written once per account until a withdrawal finds nothing held.
        if (!s.mayBeHeld) s.mayBeHeld = true;
        emit StakeHeld(account, amount, held);
    }

    /// @inheritdoc IStaking
    function release(address account, uint256 amount) external {
        if (msg.sender != _slasher) revert StakingUnauthorized(msg.sender, _slasher);
        if (amount == 0) revert StakingZeroAmount();
        uint256 held = _held[account];
        if (amount > held) revert StakingReleaseExceedsHeld(account, amount, held);
        // Safe: amount <= held.
        held -= amount;
        _held[account] = held;
        emit StakeReleased(account, amount, held);
    }

    /// @inheritdoc IStaking
    function lockForOrder(address provider, uint256 amount) external returns (uint256 pricePerGiB) {
        if (msg.sender != _market) revert StakingUnauthorized(msg.sender, _market);
        Account storage s = _accounts[provider];
        uint256 active = s.active;
        uint256 locked = s.locked;
        pricePerGiB = s.pricePerGiB;
        if (s.role != Role.Provider || pricePerGiB == 0 || active < _providerMinStake) {
            revert StakingProviderUnavailable(provider);
        }
        uint256 available = _unlocked(active, locked);
        if (amount > available) revert StakingInsufficientUnlockedStake(provider, amount, available);
        // Safe: locked + amount <= active, a uint96.
        locked += amount;
        // forge-lint: disable-next-line(unsafe-typecast)
        s.locked = uint96(locked);
        emit StakeLocked(provider, amount, locked);
    }

    /// @inheritdoc IStaking
    function unlock(address provider, uint256 amount) external {
        if (msg.sender != _market) revert StakingUnauthorized(msg.sender, _market);
        Account storage s = _accounts[provider];
        uint256 locked = s.locked;
        if (amount > locked) revert StakingUnlockExceedsLocked(provider, amount, locked);
        // Safe: amount <= locked.
        locked -= amount;
        // forge-lint: disable-next-line(unsafe-typecast)
        s.locked = uint96(locked);
        emit StakeUnlocked(provider, amount, locked);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IStaking
    function stakeOf(address account) external view returns (StakeInfo memory) {
        Account storage s = _accounts[account];
        return StakeInfo({
            active: s.active,
            locked: s.locked,
            thawEnd: s.thawEnd,
            thawing: s.thawing,
            pricePerGiB: s.pricePerGiB,
            role: s.role
        });
    }

    /// @inheritdoc IStaking
    function heldOf(address account) external view returns (uint256) {
        return _held[account];
    }

    /// @inheritdoc IStaking
    function metadataCid(address provider) external view returns (string memory) {
        return _metadataCids[provider];
    }

    /// @inheritdoc IStaking
    function unlockedStake(address account) external view returns (uint256) {
        Account storage s = _accounts[account];
        return _unlocked(s.active, s.locked);
    }

    /// @inheritdoc IStaking
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IStaking
    function slasher() external view returns (address) {
        return _slasher;
    }

    /// @inheritdoc IStaking
    function market() external view returns (address) {
        return _market;
    }

    /// @inheritdoc IStaking
    function certificateRegistry() external view returns (address) {
        return _certificateRegistry;
    }

    /// @inheritdoc IStaking
    function thawPeriod() external view returns (uint64) {
        return _thawPeriod;
    }

    /// @inheritdoc IStaking
    function providerMinStake() external view returns (uint256) {
        return _providerMinStake;
    }

    /// @inheritdoc IStaking
    function verifierMinStake() external view returns (uint256) {
        return _verifierMinStake;
    }

    function _minimum(Role role) private view returns (uint256) {
        if (role == Role.Provider) return _providerMinStake;
        if (role == Role.Verifier) return _verifierMinStake;
        return 0;
    }

    /// @dev Revokes every certificate `account` holds in the registry, for `reason`. Without code at
    /// the registry's address no registry was ever deployed there, so no certificate can exist and
    /// there is nothing to revoke: skipping then keeps withdraw and slash working on a deployment
    /// that lacks its registry, where the call would revert on the empty return data. The check
    /// warms the address, so it adds about 100 gas to the call it guards.
    function _revokeCertificates(address account, ICertificateRegistry.RevocationReason reason) private {
        address registry = _certificateRegistry;
        if (registry.code.length != 0) {
            // The count revokeAllOf returns is for off-chain callers: each revocation emits its own event.
            // slither-disable-next-line unused-return
            ICertificateRegistry(registry).revokeAllOf(account, uint8(reason));
        }
    }

    /// @dev Takes up to `amount` of `account`'s stake, active first, then thawing, for the slasher;
    /// returns what was taken (the caller transfers it). Held stake is not reduced: holds are a
    /// withdrawal floor, and the slasher releases them as its disputes end.
    function _take(address account, uint256 amount) private returns (uint256 taken) {
        if (msg.sender != _slasher) revert StakingUnauthorized(msg.sender, _slasher);
        if (amount == 0) revert StakingZeroAmount();
        Account storage s = _accounts[account];
        uint256 active = s.active;
        uint256 thawing = s.thawing;
        uint256 fromActive = amount < active ? amount : active;
        // Safe: fromActive <= amount.
        uint256 rest = amount - fromActive;
        uint256 fromThawing = rest < thawing ? rest : thawing;
        taken = fromActive + fromThawing;
        // Nothing to take means nothing happened: no event.
        if (taken == 0) return 0;

        // Safe: fromActive <= active and fromThawing <= thawing. The thaw clock is left as it is:
        // a slash never extends or resets anyone's thaw.
        active -= fromActive;
        thawing -= fromThawing;
        // forge-lint: disable-next-line(unsafe-typecast)
        s.active = uint96(active);
        // forge-lint: disable-next-line(unsafe-typecast)
        s.thawing = uint96(thawing);
        if (thawing == 0) s.thawEnd = 0;
        emit Slashed(account, msg.sender, fromActive, fromThawing, active, thawing);
    }

    function _unlocked(uint256 active, uint256 locked) private pure returns (uint256) {
        // A slash can leave less active stake than is locked; nothing is unlocked then.
        return active > locked ? active - locked : 0;
    }
}
