// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title FlowNet bandwidth market
/// @notice A client escrows a deposit in an order with a provider at the provider's current price
/// (bounded by the client's maximum). The client pays off-chain by signing EIP-712 cumulative receipts
/// `Receipt(orderId, cumulativeBytes, cumulativeAmount)`; the provider redeems the highest one it holds
/// and is paid the difference to what it already got. The total paid never exceeds the deposit. After
/// expiry plus the grace period anyone may trigger the refund of the unpaid remainder to the client;
/// with the provider's signature the client closes at once. Payouts only ever go to the order's
/// provider or client, never to the transaction's sender.
///
/// Acceptance and cancellation. Opening an order locks part of the provider's stake without asking
/// the provider, so a client that never means to use an order could otherwise keep that stake locked
/// until expiry plus grace (up to `maxDuration + gracePeriod`) and then reclaim its whole deposit. A
/// provider therefore *accepts* an order by redeeming its first receipt itself (only the provider may
/// redeem an order's first receipt; later ones anyone may submit), and until then it may `cancel` the
/// order: the client gets its whole deposit back, the stake the order locked is unlocked, and nothing
/// is paid. Because only the provider can make the first redemption, a client cannot make its order
/// uncancellable by redeeming a 1-wei receipt of its own (through any address), and a cancel can never
/// race a redemption of someone else: after the provider's first redemption a cancel is refused.
/// A provider may also `refuse` a client for a while (on its own, or in the cancel), so the client
/// cannot lock the stake again at once: to keep locking it, a griefer needs a fresh, funded address
/// for every order (a token transfer, gas money and an approval or permit on top of `openOrder`),
/// while each cancel costs the provider one transaction. A refusal does not stop a verifier that
/// could accuse the provider (staked as a verifier, at least the minimum, nothing thawing): verifiers
/// probe providers as paying clients, and a provider able to turn them away could hide from audits.
/// (A provider that cancels a verifier's probe orders instead fails the verifier's probes: that is
/// what an `unreachable` dispute, which no proof of the provider's can rebut, is for.) There is deliberately no cancellation fee:
/// a fee paid to the provider would let a provider earn by cancelling honest orders, a fee burned
/// would punish honest clients whose orders a provider cancels, and either would break the rule that
/// an order no byte was paid for refunds its whole deposit.
/// @dev An order's id is the hash of its terms (which include a sequence number), so only its mutable
/// state is stored: one slot. Whoever acts on an order passes the terms back; terms that were not
/// opened hash to an id with no open order. The OrderOpened event carries the full terms, so
/// providers and indexers have them without reading storage.
interface IBandwidthMarket {
    /// @notice The immutable terms of an order, fixed when it opens. Its id is keccak256(abi.encode(order)).
    /// @param nonce The order's sequence number in this market (1, 2, ...), unique per order.
    /// @param client Who escrowed the deposit, signs receipts, and receives refunds.
    /// @param provider Who serves the bandwidth and receives payments.
    /// @param deposit Escrowed tokens; the most the provider can ever be paid.
    /// @param pricePerGiB The provider's offer when the order opened (token units per 2^30 bytes).
    /// @param expiry Unix time after which (plus the grace period) the client can take back the rest.
    struct Order {
        uint64 nonce;
        address client;
        address provider;
        uint96 deposit;
        uint96 pricePerGiB;
        uint64 expiry;
    }

    /// @notice Where an order is in its life.
    enum Status {
        None,
        Open,
        Closed
    }

    /// @notice The stored part of an order.
    /// @param paid Total paid to the provider so far.
    /// @param status Open or Closed (None if the id was never used).
    struct OrderState {
        uint96 paid;
        Status status;
    }

    /// @notice A client-signed receipt for an order, as submitted by (or for) the provider.
    /// @param orderId The order the receipt is for.
    /// @param order The order's terms; they must hash to orderId.
    /// @param cumulativeBytes Bytes served over the whole order so far.
    /// @param cumulativeAmount Tokens owed over the whole order so far.
    /// @param signature The client's EIP-712 signature of Receipt(orderId, cumulativeBytes, cumulativeAmount).
    struct Redemption {
        bytes32 orderId;
        Order order;
        uint256 cumulativeBytes;
        uint256 cumulativeAmount;
        bytes signature;
    }

    /// @notice Order `orderId` opened with these terms; `lockedStake` of the provider's stake backs it.
    event OrderOpened(
        bytes32 indexed orderId,
        address indexed client,
        address indexed provider,
        uint64 nonce,
        uint256 deposit,
        uint256 pricePerGiB,
        uint64 expiry,
        uint256 lockedStake
    );

    /// @notice The provider of `orderId` redeemed a receipt and was paid `payout`; the order has now
    /// paid `cumulativeAmount` in total for `cumulativeBytes`.
    event Redeemed(
        bytes32 indexed orderId,
        address indexed provider,
        uint256 cumulativeBytes,
        uint256 cumulativeAmount,
        uint256 payout
    );

    /// @notice Order `orderId` closed: the provider got `payout` more (total `totalPaid`) and the client
    /// got `refund` back. `cooperative` is true for a provider-signed close, false for a reclaim after
    /// expiry plus grace.
    event OrderClosed(
        bytes32 indexed orderId,
        address indexed client,
        address indexed provider,
        uint256 payout,
        uint256 refund,
        uint256 totalPaid,
        bool cooperative
    );

    /// @notice The provider of `orderId` cancelled it before accepting it (nothing was ever paid): the
    /// client got its whole deposit `refund` back and the stake the order locked was unlocked.
    event OrderCancelled(bytes32 indexed orderId, address indexed client, address indexed provider, uint256 refund);

    /// @notice `provider` refuses new orders from `client` until `refusedUntil` (unix seconds); a time
    /// that is not in the future (0 included) means it accepts them again.
    event ClientRefused(address indexed provider, address indexed client, uint64 refusedUntil);

    /// @notice The deposit is zero or does not fit in 96 bits.
    error MarketInvalidDeposit(uint256 deposit);

    /// @notice The duration is zero or above `maxDuration`.
    error MarketInvalidDuration(uint256 duration, uint256 maxDuration);

    /// @notice The provider's current price `price` is above the client's `maxPrice`.
    error MarketPriceAboveMax(address provider, uint256 price, uint256 maxPrice);

    /// @notice The provider is the client itself, or the zero address.
    error MarketInvalidProvider(address provider);

    /// @notice Order `orderId` is not open (never existed, or already closed).
    error MarketOrderNotOpen(bytes32 orderId);

    /// @notice The terms passed with a receipt hash to `termsId`, not to the receipt's `orderId`.
    error MarketTermsMismatch(bytes32 orderId, bytes32 termsId);

    /// @notice The signature is not the order client's signature of this receipt.
    error MarketInvalidReceiptSignature(bytes32 orderId);

    /// @notice The signature is not the order provider's signature of this close.
    error MarketInvalidCloseSignature(bytes32 orderId);

    /// @notice The receipt's cumulative amount `amount` is not above what was already paid (`paid`).
    error MarketReceiptNotNewer(bytes32 orderId, uint256 amount, uint256 paid);

    /// @notice The cumulative amount `amount` exceeds the order's deposit.
    error MarketAmountExceedsDeposit(bytes32 orderId, uint256 amount, uint256 deposit);

    /// @notice The cumulative amount `amount` is more than `cumulativeBytes` cost at the order's price
    /// (`maxAmount`, rounded up).
    error MarketAmountAbovePrice(bytes32 orderId, uint256 amount, uint256 maxAmount);

    /// @notice The final amount `amount` of a close is below what was already paid (`paid`).
    error MarketFinalBelowPaid(bytes32 orderId, uint256 amount, uint256 paid);

    /// @notice Only the order's client may do this; `caller` is not `client`.
    error MarketNotClient(bytes32 orderId, address caller, address client);

    /// @notice Only the order's provider may do this; `caller` is not `provider`.
    error MarketNotProvider(bytes32 orderId, address caller, address provider);

    /// @notice The provider already accepted order `orderId` (it redeemed a receipt; `paid` in total),
    /// so it can no longer cancel it.
    error MarketOrderAccepted(bytes32 orderId, uint256 paid);

    /// @notice Order `orderId` has not been accepted yet: only its provider `provider` may redeem its
    /// first receipt, not `caller`.
    error MarketOrderNotAccepted(bytes32 orderId, address caller, address provider);

    /// @notice `provider` refuses orders from `client` until `refusedUntil`.
    error MarketClientRefused(address provider, address client, uint256 refusedUntil);

    /// @notice The order cannot be reclaimed before `reclaimableAt`; it is `now`.
    error MarketNotReclaimable(bytes32 orderId, uint256 reclaimableAt, uint256 now);

    /// @notice An empty batch was passed to redeemMany.
    error MarketEmptyBatch();

    /// @notice A constructor argument is invalid; `name` says which.
    error MarketInvalidConfig(string name);

    /// @notice Open an order with `provider`, escrowing `deposit` (pulled with transferFrom after a
    /// prior approve) for `duration` seconds, at the provider's current price if it is at most
    /// `maxPricePerGiB`. Locks part of the provider's stake. Refused while the provider refuses the
    /// caller (`refusedUntil`), unless the caller is a verifier that could accuse the provider.
    /// Returns the new order's id (the hash of its terms).
    function openOrder(address provider, uint256 deposit, uint256 duration, uint256 maxPricePerGiB)
        external
        returns (bytes32 orderId);

    /// @notice As openOrder, with an EIP-2612 permit for `deposit` in the same transaction. A permit
    /// that fails (for example because someone front-ran it) is ignored when the allowance is there.
    function openOrderWithPermit(
        address provider,
        uint256 deposit,
        uint256 duration,
        uint256 maxPricePerGiB,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (bytes32 orderId);

    /// @notice Pay the provider of `r.orderId` the difference between `r.cumulativeAmount` and what it
    /// was already paid; the payout goes to the provider. An order's first receipt only its provider may
    /// redeem (that accepts the order: it can no longer be cancelled); later receipts anyone may submit.
    function redeem(Redemption calldata r) external returns (uint256 payout);

    /// @notice redeem for several receipts (each for a different order, or increasing for one order)
    /// in one transaction; all succeed or none. The first receipt of an order must come from a batch
    /// its provider sends.
    function redeemMany(Redemption[] calldata rs) external returns (uint256 totalPayout);

    /// @notice Client only: close `orderId` now. The provider signed CloseOrder(orderId, finalAmount)
    /// with `providerSignature`: it is paid up to `finalAmount` and the client gets the rest back.
    function close(bytes32 orderId, Order calldata order, uint256 finalAmount, bytes calldata providerSignature)
        external;

    /// @notice After expiry plus the grace period, refund the unpaid remainder of `orderId` to its
    /// client and release the provider's locked stake. Anyone may call; the refund goes to the client.
    function reclaim(bytes32 orderId, Order calldata order) external returns (uint256 refund);

    /// @notice Provider only: cancel `orderId`, which it has not accepted (no receipt of it was ever
    /// redeemed, so nothing was paid). The client gets its whole deposit back (returned as `refund`),
    /// the stake the order locked is unlocked and the order is closed; this works at any time while the
    /// order is open, also after expiry. When `refuseUntil` is not 0 the provider also refuses the
    /// order's client until then, as `refuse` does, in the same transaction.
    function cancel(bytes32 orderId, Order calldata order, uint64 refuseUntil) external returns (uint256 refund);

    /// @notice Refuse new orders from `client` to you (the caller, as a provider) until `until` (unix
    /// seconds); 0 or a past time accepts them again. Orders already open are not affected (cancel
    /// those you have not accepted). Whom a provider refuses matters only to its own orders, and a
    /// refusal is ignored while `client` is a verifier that could accuse the provider (see above).
    function refuse(address client, uint64 until) external;

    /// @notice Until when `provider` refuses orders from `client` (0 or a past time: it does not).
    function refusedUntil(address provider, address client) external view returns (uint64);

    /// @notice The stored state of `orderId`.
    function orderState(bytes32 orderId) external view returns (OrderState memory);

    /// @notice The EIP-712 digest a client signs for a receipt.
    function receiptDigest(bytes32 orderId, uint256 cumulativeBytes, uint256 cumulativeAmount)
        external
        view
        returns (bytes32);

    /// @notice The EIP-712 digest a provider signs to agree to a close.
    function closeDigest(bytes32 orderId, uint256 finalAmount) external view returns (bytes32);

    /// @notice Stake locked per order, in basis points of its deposit.
    function lockBps() external view returns (uint256);

    /// @notice Seconds after expiry during which only the provider's redemptions can settle an order.
    function gracePeriod() external view returns (uint64);

    /// @notice Longest order duration, in seconds.
    function maxDuration() external view returns (uint64);

    /// @notice The nonce the next order will get.
    function nextNonce() external view returns (uint64);

    /// @notice The id of an order with these terms: keccak256(abi.encode(order)).
    function orderIdOf(Order calldata order) external pure returns (bytes32);

    /// @notice The payment token.
    function token() external view returns (address);

    /// @notice The staking contract that locks provider stake.
    function staking() external view returns (address);
}
