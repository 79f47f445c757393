"""Typed bindings for one account acting on a FlowNet deployment: stake, offer, order, pay, settle.

Each method sends one transaction through `Sender` and returns its `Sent` record (hash, gas, block),
so callers (agents, the demo, tests) can log exactly what happened on chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from flownet.chain.deploy import Deployment
from flownet.chain.tx import Sender, Sent
from flownet.chain.views import OrderState, Role, Stake, order_state, stake_of
from flownet.core import eip712
from flownet.core.receipts import CloseAgreement, MarketDomain, Order, Receipt
from flownet.errors import ChainError, ConfigError

MAX_UINT256 = 2**256 - 1


@dataclass(frozen=True)
class SignedReceipt:
    """A receipt with the client's signature, ready to redeem."""

    order: Order
    receipt: Receipt
    signature: bytes

    def as_redemption(self) -> tuple[bytes, tuple[int, str, str, int, int, int], int, int, bytes]:
        """The IBandwidthMarket.Redemption tuple."""
        r = self.receipt
        return (r.order_id, self.order.as_tuple(), r.cumulative_bytes, r.cumulative_amount, self.signature)


def sign_receipt(account: LocalAccount, domain: MarketDomain, order: Order, receipt: Receipt) -> SignedReceipt:
    """The client's EIP-712 signature of `receipt`, after checking it against the order's terms."""
    receipt.check_against(order)
    signature = eip712.sign(bytes(account.key), eip712.digest(domain.eip712_domain, "Receipt", receipt.message()))
    return SignedReceipt(order, receipt, signature)


def sign_close(account: LocalAccount, domain: MarketDomain, agreement: CloseAgreement) -> bytes:
    """The provider's EIP-712 signature agreeing to close an order at `agreement.final_amount`."""
    return eip712.sign(bytes(account.key), eip712.digest(domain.eip712_domain, "CloseOrder", agreement.message()))


class FlowNet:
    """One account's view of a deployment."""

    def __init__(self, w3: Web3, deployment: Deployment, account: LocalAccount) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self._address = account.address if account is not None else ""
        self.sender = Sender(w3, account) if account is not None else None
        self.token = deployment.contract(w3, "FlowToken")
        self.staking = deployment.contract(w3, "Staking")
        self.market = deployment.contract(w3, "BandwidthMarket")
        self.domain = MarketDomain(deployment.chain_id, self.market.address)

    @classmethod
    def readonly(cls, w3: Web3, deployment: Deployment, address: str) -> FlowNet:
        """Views only, for `address` (no key: any transaction raises)."""
        net = cls(w3, deployment, None)  # type: ignore[arg-type]
        net._address = Web3.to_checksum_address(address)
        return net

    @property
    def address(self) -> str:
        return self._address

    # ------------------------------------------------------------------ token

    def balance(self, who: str | None = None) -> int:
        return int(self.token.functions.balanceOf(who or self.address).call())

    def transfer(self, to: str, amount: int) -> Sent:
        return self.sender.transact(self.token.functions.transfer(to, amount), "transfer")

    def approve(self, spender: str, amount: int = MAX_UINT256) -> Sent:
        return self.sender.transact(self.token.functions.approve(spender, amount), "approve")

    # ------------------------------------------------------------------ staking

    def stake(self, role: Role, amount: int) -> Sent:
        return self.sender.transact(self.staking.functions.stake(int(role), amount), "stake")

    def set_offer(self, price_per_gib: int, metadata_cid: str) -> Sent:
        return self.sender.transact(self.staking.functions.setOffer(price_per_gib, metadata_cid), "setOffer")

    def request_unstake(self, amount: int) -> Sent:
        return self.sender.transact(self.staking.functions.requestUnstake(amount), "requestUnstake")

    def withdraw(self) -> Sent:
        return self.sender.transact(self.staking.functions.withdraw(), "withdraw")

    # ------------------------------------------------------------------ market

    def open_order(self, provider: str, deposit: int, duration: int, max_price_per_gib: int) -> tuple[Order, Sent]:
        """Open an order (after approving the market) and return its terms from the OrderOpened event."""
        if deposit <= 0:
            raise ConfigError(f"deposit must be positive (not {deposit})")
        sent = self.sender.transact(
            self.market.functions.openOrder(provider, deposit, duration, max_price_per_gib), "openOrder"
        )
        return self._order_from(sent), sent

    def open_order_with_permit(
        self, provider: str, deposit: int, duration: int, max_price_per_gib: int, deadline: int
    ) -> tuple[Order, Sent]:
        """Open an order with an EIP-2612 permit signed here, in a single transaction."""
        v, r, s = self._permit(self.market.address, deposit, deadline)
        fn = self.market.functions.openOrderWithPermit(
            provider, deposit, duration, max_price_per_gib, deadline, v, r, s
        )
        sent = self.sender.transact(fn, "openOrderWithPermit")
        return self._order_from(sent), sent

    def sign_receipt(self, order: Order, cumulative_bytes: int, amount: int | None = None) -> SignedReceipt:
        """As the client: sign a receipt for `cumulative_bytes` (amount defaults to their cost)."""
        if Web3.to_checksum_address(order.client) != self.address:
            raise ConfigError(f"only the order's client {order.client} signs its receipts, not {self.address}")
        receipt = (
            order.receipt_for(cumulative_bytes) if amount is None else Receipt(order.order_id, cumulative_bytes, amount)
        )
        return sign_receipt(self.account, self.domain, order, receipt)

    def sign_close(self, order: Order, final_amount: int) -> bytes:
        """As the provider: agree that `order` closes with `final_amount` paid in total."""
        return sign_close(self.account, self.domain, CloseAgreement(order.order_id, final_amount))

    def redeem(self, signed: SignedReceipt) -> Sent:
        return self.sender.transact(self.market.functions.redeem(signed.as_redemption()), "redeem")

    def redeem_many(self, signed: Sequence[SignedReceipt]) -> Sent:
        if not signed:
            raise ConfigError("redeem_many needs at least one receipt")
        return self.sender.transact(
            self.market.functions.redeemMany([s.as_redemption() for s in signed]), f"redeemMany x{len(signed)}"
        )

    def close(self, order: Order, final_amount: int, provider_signature: bytes) -> Sent:
        return self.sender.transact(
            self.market.functions.close(order.order_id, order.as_tuple(), final_amount, provider_signature), "close"
        )

    def reclaim(self, order: Order) -> Sent:
        return self.sender.transact(self.market.functions.reclaim(order.order_id, order.as_tuple()), "reclaim")

    def cancel(self, order: Order, refuse_until: int = 0) -> Sent:
        """As the provider: cancel `order`, which it has not accepted (nothing redeemed yet). The client
        gets its whole deposit back and the order's stake lock is released; with `refuse_until` (unix
        seconds, not 0) the client is also refused until then."""
        if Web3.to_checksum_address(order.provider) != self.address:
            raise ConfigError(f"only the order's provider {order.provider} cancels it, not {self.address}")
        if not 0 <= refuse_until < 2**64:
            raise ConfigError(f"refuse_until must be a unix time in 0..2**64-1 (not {refuse_until})")
        return self.sender.transact(
            self.market.functions.cancel(order.order_id, order.as_tuple(), refuse_until), "cancel"
        )

    def refuse(self, client: str, until: int) -> Sent:
        """As a provider: refuse new orders from `client` until `until` (unix seconds; 0 lifts a refusal)."""
        if not 0 <= until < 2**64:
            raise ConfigError(f"a refusal ends at a unix time in 0..2**64-1 (not {until})")
        return self.sender.transact(self.market.functions.refuse(Web3.to_checksum_address(client), until), "refuse")

    def refused_until(self, client: str, provider: str | None = None) -> int:
        """Until when `provider` (default: this account) refuses orders from `client` (0: it does not)."""
        who = Web3.to_checksum_address(provider or self.address)
        return int(self.market.functions.refusedUntil(who, Web3.to_checksum_address(client)).call())

    def can_accuse(self, who: str) -> bool:
        """Whether `who` is a verifier that could accuse a provider (role verifier, at least the minimum
        stake, nothing thawing): the market does not let a provider refuse such a client."""
        stake = self.stake_of(who)
        minimum = int(self.staking.functions.verifierMinStake().call())
        return stake.is_verifier and stake.active >= minimum and stake.thawing == 0

    def stake_of(self, who: str | None = None) -> Stake:
        """Staking's record of `who` (default: this account)."""
        return stake_of(self.staking, who or self.address)

    def order_status(self, order: Order) -> OrderState:
        """`order`'s paid amount and status on chain."""
        return order_state(self.market, order.order_id)

    def order_state(self, order: Order) -> tuple[int, int]:
        """(paid, status) of `order` on chain; status 0 none, 1 open, 2 closed."""
        return self.order_status(order).as_tuple()

    # ------------------------------------------------------------------ internals

    def _order_from(self, sent: Sent) -> Order:
        events = self.market.events.OrderOpened().process_receipt(sent.receipt, errors=DISCARD)
        if len(events) != 1:
            raise ChainError(f"{sent.action}: expected one OrderOpened event in {sent.tx_hash}, got {len(events)}")
        a = events[0]["args"]
        order = Order(a["nonce"], a["client"], a["provider"], a["deposit"], a["pricePerGiB"], a["expiry"])
        if order.order_id != bytes(a["orderId"]):
            raise ChainError(f"order id mismatch in {sent.tx_hash}: terms hash 0x{order.order_id.hex()}")
        return order

    def _permit(self, spender: str, value: int, deadline: int) -> tuple[int, bytes, bytes]:
        nonce = self.token.functions.nonces(self.address).call()
        domain = eip712.Domain(self.token.functions.name().call(), "1", self.deployment.chain_id, self.token.address)
        message = {"owner": self.address, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline}
        signature = eip712.sign(bytes(self.account.key), eip712.digest(domain, "Permit", message))
        return signature[64], signature[:32], signature[32:64]
