"""ServiceProof signatures at tunnel speed: the coincurve digest equals the EIP-712 one the chain checks."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from flownet.chain.slashing import service_proof_typed_data
from flownet.errors import ReceiptError
from flownet.tunnel.payment import (
    ServiceProofSigner,
    recover_proof_signer,
    service_proof_digest,
    service_proof_separator,
)

MANAGER = "0x" + "5a" * 20


def _eip712(chain_id: int, manager: str, order_id: bytes, epoch: int, bytes_served: int) -> bytes:
    typed = service_proof_typed_data(chain_id, manager, order_id, epoch, bytes_served)
    return bytes(_hash_eip191_message(encode_typed_data(full_message=typed)))


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 2**64),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**256 - 1),
)
def test_digest_equals_eip712(chain_id: int, order_id: bytes, epoch: int, bytes_served: int) -> None:
    fast = service_proof_digest(service_proof_separator(chain_id, MANAGER), order_id, epoch, bytes_served)
    assert fast == _eip712(chain_id, MANAGER, order_id, epoch, bytes_served)


def test_signer_matches_eth_account_and_recovers() -> None:
    account = Account.create()
    order_id = bytes(range(32))
    signer = ServiceProofSigner(bytes(account.key), 31337, MANAGER)
    signature = signer.sign(order_id, 987_654, 12_345_678)
    typed = service_proof_typed_data(31337, MANAGER, order_id, 987_654, 12_345_678)
    assert signature == bytes(account.sign_message(encode_typed_data(full_message=typed)).signature)
    assert recover_proof_signer(signer.separator, order_id, 987_654, 12_345_678, signature) == account.address
    # another epoch or byte count recovers someone else
    assert recover_proof_signer(signer.separator, order_id, 987_655, 12_345_678, signature) != account.address
    with pytest.raises(ReceiptError, match="service proof signature must be 65 bytes"):
        recover_proof_signer(signer.separator, order_id, 1, 1, signature[:64])
