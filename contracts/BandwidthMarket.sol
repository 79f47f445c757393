// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IBandwidthMarket} from "./interfaces/IBandwidthMarket.sol";
import {IStaking} from "./interfaces/IStaking.sol";
import {Pricing} from "./libraries/Pricing.sol";

/// @title FlowNet bandwidth market (see IBandwidthMarket for the full specification)
contract BandwidthMarket is IBandwidthMarket, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice EIP-712 type of a client's payment receipt.
    bytes32 public constant RECEIPT_TYPEHASH =
        keccak256("Receipt(bytes32 orderId,uint256 cumulativeBytes,uint256 cumulativeAmount)");

    /// @notice EIP-712 type of a provider's agreement to close an order.
    bytes32 public constant CLOSE_TYPEHASH = keccak256("CloseOrder(bytes32 orderId,uint256 finalAmount)");

    uint256 private constant BPS = 10_000;

    /// @notice Longest grace period and order duration accepted at deployment; keeps every expiry
    /// far inside uint64.
    uint64 public constant MAX_PERIOD = 365 days;

    IERC20 private immutable _token;
    IStaking private immutable _staking;
    uint64 private immutable _gracePeriod;
    uint64 private immutable _maxDuration;
    uint16 private immutable _lockBps;

    uint64 private _nextNonce = 1;
    mapping(bytes32 orderId => OrderState) private _orders;
    mapping(address provider => mapping(address client => uint64 until)) private _refusedUntil;

    /// @param lockBps_ Provider stake locked per order, in basis points of the deposit (1 to 10,000).
    constructor(address token_, address staking_, uint64 gracePeriod_, uint64 maxDuration_, uint16 lockBps_)
        EIP712("FlowNet BandwidthMarket", "1")
    {
        if (token_ == address(0)) revert MarketInvalidConfig("token");
        if (staking_ == address(0)) revert MarketInvalidConfig("staking");
        if (gracePeriod_ == 0 || gracePeriod_ > MAX_PERIOD) revert MarketInvalidConfig("gracePeriod");
        if (maxDuration_ == 0 || maxDuration_ > MAX_PERIOD) revert MarketInvalidConfig("maxDuration");
        if (lockBps_ == 0 || lockBps_ > BPS) revert MarketInvalidConfig("lockBps");
        // Staking names its market at deployment; refuse to be a market it does not accept.
        if (IStaking(staking_).market() != address(this)) revert MarketInvalidConfig("staking.market");
        if (IStaking(staking_).token() != token_) revert MarketInvalidConfig("staking.token");
        _token = IERC20(token_);
        _staking = IStaking(staking_);
        _gracePeriod = gracePeriod_;
        _maxDuration = maxDuration_;
        _lockBps = lockBps_;
    }

    // ---------------------------------------------------------------- clients

    /// @inheritdoc IBandwidthMarket
    function openOrder(address provider, uint256 deposit, uint256 duration, uint256 maxPricePerGiB)
        external
        returns (bytes32 orderId)
    {
        return _open(provider, deposit, duration, maxPricePerGiB);
    }

    /// @inheritdoc IBandwidthMarket
    function openOrderWithPermit(
        address provider,
        uint256 deposit,
        uint256 duration,
        uint256 maxPricePerGiB,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (bytes32 orderId) {
        // A front-runner can spend the permit first; then the allowance is already in place and the
        // transferFrom in _open succeeds, so a failed permit is not an error by itself.
        try IERC20Permit(address(_token)).permit(msg.sender, address(this), deposit, deadline, v, r, s) {} catch {}
        return _open(provider, deposit, duration, maxPricePerGiB);
    }

    /// @inheritdoc IBandwidthMarket
    function close(bytes32 orderId, Order calldata order, uint256 finalAmount, bytes calldata providerSignature)
        external
    {
        OrderState storage state = _openOrder(orderId, order);
        if (msg.sender != order.client) revert MarketNotClient(orderId, msg.sender, order.client);
        uint256 paid = state.paid;
        if (finalAmount < paid) revert MarketFinalBelowPaid(orderId, finalAmount, paid);
        if (finalAmount > order.deposit) revert MarketAmountExceedsDeposit(orderId, finalAmount, order.deposit);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CLOSE_TYPEHASH, orderId, finalAmount)));
        if (!SignatureChecker.isValidSignatureNowCalldata(order.provider, digest, providerSignature)) {
            revert MarketInvalidCloseSignature(orderId);
        }
        // Safe: paid <= finalAmount <= deposit.
        _settle(orderId, order, state, finalAmount - paid, order.deposit - finalAmount, finalAmount, true);
    }

    /// @inheritdoc IBandwidthMarket
    function reclaim(bytes32 orderId, Order calldata order) external returns (uint256 refund) {
        OrderState storage state = _openOrder(orderId, order);
        uint256 reclaimableAt = uint256(order.expiry) + _gracePeriod;
        if (block.timestamp < reclaimableAt) revert MarketNotReclaimable(orderId, reclaimableAt, block.timestamp);
        uint256 paid = state.paid;
        // Safe: paid <= deposit always holds for an open order.
        refund = order.deposit - paid;
        _settle(orderId, order, state, 0, refund, paid, false);
    }

    // ---------------------------------------------------------------- providers

    /// @inheritdoc IBandwidthMarket
    function cancel(bytes32 orderId, Order calldata order, uint64 refuseUntil) external returns (uint256 refund) {
        OrderState storage state = _openOrder(orderId, order);
        if (msg.sender != order.provider) revert MarketNotProvider(orderId, msg.sender, order.provider);
        // paid != 0 exactly when the provider has redeemed a receipt: only it may redeem the first one.
        uint256 paid = state.paid;
        if (paid != 0) revert MarketOrderAccepted(orderId, paid);
        state.status = Status.Closed;
        refund = order.deposit;
        emit OrderCancelled(orderId, order.client, order.provider, refund);
        if (refuseUntil != 0) _refuse(order.client, refuseUntil);
        // The same amount the order locked when it opened: deposit and lockBps are fixed.
        _staking.unlock(order.provider, Pricing.lockFor(order.deposit, _lockBps));
        _token.safeTransfer(order.client, refund);
    }

    /// @inheritdoc IBandwidthMarket
    function refuse(address client, uint64 until) external {
        _refuse(client, until);
    }

    /// @inheritdoc IBandwidthMarket
    function redeem(Redemption calldata r) external returns (uint256 payout) {
        payout = _redeem(r);
        _token.safeTransfer(r.order.provider, payout);
    }

    /// @inheritdoc IBandwidthMarket
    function redeemMany(Redemption[] calldata rs) external returns (uint256 totalPayout) {
        uint256 n = rs.length;
        if (n == 0) revert MarketEmptyBatch();
        // Consecutive receipts of the same provider are paid with one transfer.
        address payee = rs[0].order.provider;
        uint256 pending = 0; // explicit: Slither flags an uninitialized local
        for (uint256 i; i < n; ++i) {
            Redemption calldata r = rs[i];
            uint256 payout = _redeem(r);
            totalPayout += payout;
            if (r.order.provider != payee) {
                if (pending != 0) _token.safeTransfer(payee, pending);
                payee = r.order.provider;
                pending = payout;
            } else {
                pending += payout;
            }
        }
        if (pending != 0) _token.safeTransfer(payee, pending);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IBandwidthMarket
    function orderState(bytes32 orderId) external view returns (OrderState memory) {
        return _orders[orderId];
    }

    /// @inheritdoc IBandwidthMarket
    function receiptDigest(bytes32 orderId, uint256 cumulativeBytes, uint256 cumulativeAmount)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(RECEIPT_TYPEHASH, orderId, cumulativeBytes, cumulativeAmount)));
    }

    /// @inheritdoc IBandwidthMarket
    function closeDigest(bytes32 orderId, uint256 finalAmount) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CLOSE_TYPEHASH, orderId, finalAmount)));
    }

    /// @inheritdoc IBandwidthMarket
    function refusedUntil(address provider, address client) external view returns (uint64) {
        return _refusedUntil[provider][client];
    }

    /// @inheritdoc IBandwidthMarket
    function lockBps() external view returns (uint256) {
        return _lockBps;
    }

    /// @inheritdoc IBandwidthMarket
    function gracePeriod() external view returns (uint64) {
        return _gracePeriod;
    }

    /// @inheritdoc IBandwidthMarket
    function maxDuration() external view returns (uint64) {
        return _maxDuration;
    }

    /// @inheritdoc IBandwidthMarket
    function nextNonce() external view returns (uint64) {
        return _nextNonce;
    }

    /// @inheritdoc IBandwidthMarket
    function orderIdOf(Order calldata order) external pure returns (bytes32) {
        return keccak256(abi.encode(order));
    }

    /// @inheritdoc IBandwidthMarket
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IBandwidthMarket
    function staking() external view returns (address) {
        return address(_staking);
    }

    // ---------------------------------------------------------------- internals

    function _open(address provider, uint256 deposit, uint256 duration, uint256 maxPricePerGiB)
        private
        returns (bytes32 orderId)
    {
        if (deposit == 0 || deposit > type(uint96).max) revert MarketInvalidDeposit(deposit);
        if (duration == 0 || duration > _maxDuration) revert MarketInvalidDuration(duration, _maxDuration);
        if (provider == address(0) || provider == msg.sender) revert MarketInvalidProvider(provider);
        uint64 refusedUntil_ = _refusedUntil[provider][msg.sender];
        if (block.timestamp < refusedUntil_ && !_canAccuse(msg.sender)) {
            revert MarketClientRefused(provider, msg.sender, refusedUntil_);
        }

        uint256 lockAmount = Pricing.lockFor(deposit, _lockBps);
        uint256 price = _staking.lockForOrder(provider, lockAmount);
        if (price > maxPricePerGiB) revert MarketPriceAboveMax(provider, price, maxPricePerGiB);

        // Safe: duration <= maxDuration <= 365 days, and timestamps stay far below 2^63 for ages.
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 expiry = uint64(block.timestamp + duration);
        uint64 nonce = _nextNonce++;
        Order memory order = Order({
            nonce: nonce,
            client: msg.sender,
            provider: provider,
            // forge-lint: disable-next-line(unsafe-typecast)
            deposit: uint96(deposit),
            // forge-lint: disable-next-line(unsafe-typecast)
            pricePerGiB: uint96(price),
            expiry: expiry
        });
        orderId = keccak256(abi.encode(order));
        _orders[orderId] = OrderState({paid: 0, status: Status.Open});
        emit OrderOpened(orderId, msg.sender, provider, nonce, deposit, price, expiry, lockAmount);
        _token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @dev Checks and books one receipt; the caller pays the returned amount to r.order.provider.
    function _redeem(Redemption calldata r) private returns (uint256 payout) {
        bytes32 orderId = r.orderId;
        OrderState storage state = _openOrder(orderId, r.order);
        uint256 amount = r.cumulativeAmount;
        uint256 paid = state.paid;
        if (amount <= paid) revert MarketReceiptNotNewer(orderId, amount, paid);
        if (amount > r.order.deposit) revert MarketAmountExceedsDeposit(orderId, amount, r.order.deposit);
        uint256 maxAmount = Pricing.costOf(r.cumulativeBytes, r.order.pricePerGiB);
        if (amount > maxAmount) revert MarketAmountAbovePrice(orderId, amount, maxAmount);
        if (!SignatureChecker.isValidSignatureNowCalldata(
                r.order.client, receiptDigest(orderId, r.cumulativeBytes, amount), r.signature
            )) revert MarketInvalidReceiptSignature(orderId);
        // The first redemption is the provider's acceptance (after it, no cancel): nobody else may make it.
        if (paid == 0 && msg.sender != r.order.provider) {
            revert MarketOrderNotAccepted(orderId, msg.sender, r.order.provider);
        }

        // Safe: paid < amount <= deposit, a uint96.
        payout = amount - paid;
        // forge-lint: disable-next-line(unsafe-typecast)
        state.paid = uint96(amount);
        emit Redeemed(orderId, r.order.provider, r.cumulativeBytes, amount, payout);
    }

    /// @dev The open order whose terms are `order`. A caller-supplied id must match the terms, so
    /// a receipt signed for one order can never settle another.
    function _openOrder(bytes32 orderId, Order calldata order) private view returns (OrderState storage state) {
        bytes32 termsId = keccak256(abi.encode(order));
        if (termsId != orderId) revert MarketTermsMismatch(orderId, termsId);
        state = _orders[orderId];
        if (state.status != Status.Open) revert MarketOrderNotOpen(orderId);
    }

    /// @dev Whether `account` is a verifier that could accuse a provider (the SlashingManager's test:
    /// role Verifier, at least the minimum active stake, nothing thawing). Read only for a refused client.
    function _canAccuse(address account) private view returns (bool) {
        IStaking.StakeInfo memory s = _staking.stakeOf(account);
        return s.role == IStaking.Role.Verifier && s.active >= _staking.verifierMinStake() && s.thawing == 0;
    }

    function _refuse(address client, uint64 until) private {
        _refusedUntil[msg.sender][client] = until;
        emit ClientRefused(msg.sender, client, until);
    }

    function _settle(
        bytes32 orderId,
        Order calldata order,
        OrderState storage state,
        uint256 payout,
        uint256 refund,
        uint256 totalPaid,
        bool cooperative
    ) private {
        // forge-lint: disable-next-line(unsafe-typecast)
        state.paid = uint96(totalPaid);
        state.status = Status.Closed;
        emit OrderClosed(orderId, order.client, order.provider, payout, refund, totalPaid, cooperative);
        _staking.unlock(order.provider, Pricing.lockFor(order.deposit, _lockBps));
        if (payout != 0) _token.safeTransfer(order.provider, payout);
        if (refund != 0) _token.safeTransfer(order.client, refund);
    }
}
