// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MarketFixture} from "./utils/MarketFixture.sol";
import {FlowToken} from "../FlowToken.sol";
import {IFlowToken} from "../interfaces/IFlowToken.sol";

/// @notice Unit and fuzz tests of FlowToken: fixed supply at deployment and EIP-2612 permit.
contract FlowTokenTest is MarketFixture {
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    /// @dev secp256k1 group order.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    // ================================================================ helpers

    function _structHash(address owner, address spender, uint256 value, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, nonce, deadline));
    }

    function _domainSeparator(address verifying, uint256 chainId) internal pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("FlowNet Token"), keccak256("1"), chainId, verifying));
    }

    /// @dev The EIP-712 digest, built from first principles rather than from the token's own separator.
    function _digest(address owner, address spender, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encodePacked(
                "\x19\x01",
                _domainSeparator(address(token), block.chainid),
                _structHash(owner, spender, value, nonce, deadline)
            )
        );
    }

    function _sign(uint256 key, address owner, address spender, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        return vm.sign(key, _digest(owner, spender, value, nonce, deadline));
    }

    // ================================================================ constructor

    function test_constructor_mintsSupplyToHolder() public {
        address to = address(0xCAFE);
        vm.expectEmit(true, true, false, true);
        emit IERC20.Transfer(address(0), to, 123_456e18);
        FlowToken t = new FlowToken(to, 123_456e18);
        assertEq(t.totalSupply(), 123_456e18, "totalSupply");
        assertEq(t.balanceOf(to), 123_456e18, "holder balance");
        assertEq(t.balanceOf(address(this)), 0, "deployer gets nothing");
    }

    function test_constructor_fixtureSupply() public view {
        assertEq(token.totalSupply(), SUPPLY, "totalSupply");
        assertEq(token.balanceOf(holder), SUPPLY - 4 * FUNDS, "holder keeps the rest");
        assertEq(token.balanceOf(provider), FUNDS, "provider funded");
    }

    function test_constructor_supplyAtExactUint96Max() public {
        FlowToken t = new FlowToken(holder, type(uint96).max);
        assertEq(t.totalSupply(), type(uint96).max, "max supply");
        assertEq(t.balanceOf(holder), type(uint96).max, "holder balance");
    }

    function test_constructor_zeroSupply() public {
        FlowToken t = new FlowToken(holder, 0);
        assertEq(t.totalSupply(), 0, "zero supply allowed");
    }

    function test_RevertWhen_constructor_holderZero() public {
        vm.expectRevert(abi.encodeWithSelector(IFlowToken.FlowTokenInvalidHolder.selector, address(0)));
        new FlowToken(address(0), SUPPLY);
    }

    function test_RevertWhen_constructor_supplyAboveUint96Max() public {
        uint256 supply = uint256(type(uint96).max) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(IFlowToken.FlowTokenSupplyTooLarge.selector, supply, uint256(type(uint96).max))
        );
        new FlowToken(holder, supply);
    }

    function test_RevertWhen_constructor_supplyMaxUint256() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IFlowToken.FlowTokenSupplyTooLarge.selector, type(uint256).max, uint256(type(uint96).max)
            )
        );
        new FlowToken(holder, type(uint256).max);
    }

    function testFuzz_constructor_supplyFitsUint96(uint256 supply) public {
        if (supply > type(uint96).max) {
            vm.expectRevert(
                abi.encodeWithSelector(IFlowToken.FlowTokenSupplyTooLarge.selector, supply, uint256(type(uint96).max))
            );
            new FlowToken(holder, supply);
        } else {
            FlowToken t = new FlowToken(holder, supply);
            assertEq(t.totalSupply(), supply, "totalSupply");
            assertEq(t.balanceOf(holder), supply, "holder balance");
        }
    }

    // ================================================================ metadata

    function test_name() public view {
        assertEq(token.name(), "FlowNet Token", "name");
    }

    function test_symbol() public view {
        assertEq(token.symbol(), "FLOW", "symbol");
    }

    function test_decimals() public view {
        assertEq(token.decimals(), 18, "decimals");
    }

    // ================================================================ ERC-20 basics

    function test_transfer_movesBalance() public {
        vm.expectEmit(true, true, false, true, address(token));
        emit IERC20.Transfer(provider, stranger, 5e18);
        vm.prank(provider);
        assertTrue(token.transfer(stranger, 5e18), "transfer returns true");
        assertEq(token.balanceOf(provider), FUNDS - 5e18, "sender");
        assertEq(token.balanceOf(stranger), FUNDS + 5e18, "recipient");
        assertEq(token.totalSupply(), SUPPLY, "supply fixed");
    }

    // ================================================================ DOMAIN_SEPARATOR and nonces

    function test_DOMAIN_SEPARATOR_matchesEip712() public view {
        assertEq(token.DOMAIN_SEPARATOR(), _domainSeparator(address(token), block.chainid), "domain separator");
    }

    function test_DOMAIN_SEPARATOR_followsChainId() public {
        bytes32 before = token.DOMAIN_SEPARATOR();
        vm.chainId(block.chainid + 1);
        bytes32 forked = token.DOMAIN_SEPARATOR();
        assertTrue(forked != before, "separator changes on another chain");
        assertEq(forked, _domainSeparator(address(token), block.chainid), "recomputed for the new chain");
    }

    function test_DOMAIN_SEPARATOR_differsPerDeployment() public {
        FlowToken other = new FlowToken(holder, 1);
        assertTrue(other.DOMAIN_SEPARATOR() != token.DOMAIN_SEPARATOR(), "bound to the verifying contract");
    }

    function test_eip712Domain_fields() public view {
        (bytes1 fields, string memory name, string memory version, uint256 chainId, address verifying,,) =
            token.eip712Domain();
        assertEq(uint256(uint8(fields)), 0x0f, "fields");
        assertEq(name, "FlowNet Token", "name");
        assertEq(version, "1", "version");
        assertEq(chainId, block.chainid, "chainId");
        assertEq(verifying, address(token), "verifyingContract");
    }

    function test_nonces_startAtZero() public view {
        assertEq(token.nonces(provider), 0, "provider");
        assertEq(token.nonces(address(0x1234)), 0, "unknown");
    }

    function test_nonces_incrementPerPermitAndPerOwner() public {
        uint256 deadline = block.timestamp + 1 hours;
        for (uint256 i; i < 3; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, i + 1, i, deadline);
            token.permit(provider, stranger, i + 1, deadline, v, r, s);
            assertEq(token.nonces(provider), i + 1, "provider nonce");
        }
        assertEq(token.nonces(client), 0, "other owners untouched");
        assertEq(token.nonces(stranger), 0, "spender's nonce untouched");
        assertEq(token.allowance(provider, stranger), 3, "last permit wins");
    }

    // ================================================================ permit

    function test_permit_setsAllowanceAndConsumesNonce() public {
        uint256 value = 250e18;
        uint256 deadline = block.timestamp + 1 days;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, value, 0, deadline);

        vm.expectEmit(true, true, false, true, address(token));
        emit IERC20.Approval(provider, stranger, value);
        vm.prank(client); // anyone may submit the permit
        token.permit(provider, stranger, value, deadline, v, r, s);

        assertEq(token.allowance(provider, stranger), value, "allowance");
        assertEq(token.nonces(provider), 1, "nonce consumed");

        vm.prank(stranger);
        token.transferFrom(provider, stranger, value);
        assertEq(token.balanceOf(stranger), FUNDS + value, "spender used the allowance");
        assertEq(token.allowance(provider, stranger), 0, "allowance spent");
    }

    function test_permit_atExactDeadline() public {
        uint256 deadline = block.timestamp;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        token.permit(provider, stranger, 1e18, deadline, v, r, s);
        assertEq(token.allowance(provider, stranger), 1e18, "allowance");
    }

    function test_permit_maxValue() public {
        uint256 deadline = block.timestamp + 1;
        (uint8 v, bytes32 r, bytes32 s) = _sign(CLIENT_KEY, client, address(market), type(uint256).max, 0, deadline);
        token.permit(client, address(market), type(uint256).max, deadline, v, r, s);
        assertEq(token.allowance(client, address(market)), type(uint256).max, "infinite allowance");
    }

    function test_RevertWhen_permit_expired() public {
        uint256 deadline = block.timestamp - 1;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        token.permit(provider, stranger, 1e18, deadline, v, r, s);
        assertEq(token.nonces(provider), 0, "nonce not consumed");
    }

    function test_RevertWhen_permit_expiredAfterWarp() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
        token.permit(provider, stranger, 1e18, deadline, v, r, s);
    }

    function test_RevertWhen_permit_wrongSigner() public {
        uint256 deadline = block.timestamp + 1 hours;
        // The stranger signs a permit spending the provider's tokens.
        (uint8 v, bytes32 r, bytes32 s) = _sign(STRANGER_KEY, provider, stranger, 1e18, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, stranger, provider));
        token.permit(provider, stranger, 1e18, deadline, v, r, s);
        assertEq(token.allowance(provider, stranger), 0, "no allowance");
        assertEq(token.nonces(provider), 0, "nonce not consumed");
    }

    function test_RevertWhen_permit_replayedNonce() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        token.permit(provider, stranger, 1e18, deadline, v, r, s);
        vm.prank(stranger);
        token.transferFrom(provider, stranger, 1e18);

        // Replayed, the signature is checked against nonce 1 and recovers some unrelated address.
        address recovered = ecrecover(_digest(provider, stranger, 1e18, 1, deadline), v, r, s);
        assertTrue(recovered != provider, "replay does not recover the owner");
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, provider));
        token.permit(provider, stranger, 1e18, deadline, v, r, s);
        assertEq(token.allowance(provider, stranger), 0, "allowance not restored");
        assertEq(token.nonces(provider), 1, "nonce");
    }

    function test_RevertWhen_permit_futureNonce() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 1, deadline);
        address recovered = ecrecover(_digest(provider, stranger, 1e18, 0, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, provider));
        token.permit(provider, stranger, 1e18, deadline, v, r, s);
    }

    function test_RevertWhen_permit_tamperedValue() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        address recovered = ecrecover(_digest(provider, stranger, 2e18, 0, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, provider));
        token.permit(provider, stranger, 2e18, deadline, v, r, s);
    }

    function test_RevertWhen_permit_otherSpender() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        address recovered = ecrecover(_digest(provider, client, 1e18, 0, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, provider));
        token.permit(provider, client, 1e18, deadline, v, r, s);
    }

    function test_RevertWhen_permit_otherChain() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        vm.chainId(block.chainid + 1);
        address recovered = ecrecover(_digest(provider, stranger, 1e18, 0, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, provider));
        token.permit(provider, stranger, 1e18, deadline, v, r, s);
    }

    function test_RevertWhen_permit_malleableHighS() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        uint8 flippedV = v == 27 ? 28 : 27;
        // The twin signature is valid for ecrecover but rejected as malleable.
        assertEq(ecrecover(_digest(provider, stranger, 1e18, 0, deadline), flippedV, r, highS), provider, "twin");
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignatureS.selector, highS));
        token.permit(provider, stranger, 1e18, deadline, flippedV, r, highS);
    }

    function test_RevertWhen_permit_invalidV() public {
        uint256 deadline = block.timestamp + 1 hours;
        (, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        vm.expectRevert(abi.encodeWithSelector(ECDSA.ECDSAInvalidSignature.selector));
        token.permit(provider, stranger, 1e18, deadline, 29, r, s);
    }

    function testFuzz_permit(uint256 ownerKey, address spender, uint256 value, uint256 ttl) public {
        ownerKey = bound(ownerKey, 1, SECP256K1_N - 1);
        ttl = bound(ttl, 0, 365 days);
        vm.assume(spender != address(0));
        address owner = vm.addr(ownerKey);
        uint256 deadline = block.timestamp + ttl;
        uint256 nonce = token.nonces(owner);
        (uint8 v, bytes32 r, bytes32 s) = _sign(ownerKey, owner, spender, value, nonce, deadline);

        token.permit(owner, spender, value, deadline, v, r, s);
        assertEq(token.allowance(owner, spender), value, "allowance");
        assertEq(token.nonces(owner), nonce + 1, "nonce");

        // The same signature never works twice.
        address recovered = ecrecover(_digest(owner, spender, value, nonce + 1, deadline), v, r, s);
        vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612InvalidSigner.selector, recovered, owner));
        token.permit(owner, spender, value, deadline, v, r, s);
    }

    function testFuzz_permit_expiredIffPastDeadline(uint256 deadline, uint256 elapsed) public {
        deadline = bound(deadline, block.timestamp, block.timestamp + 365 days);
        elapsed = bound(elapsed, 0, 400 days);
        (uint8 v, bytes32 r, bytes32 s) = _sign(PROVIDER_KEY, provider, stranger, 1e18, 0, deadline);
        vm.warp(block.timestamp + elapsed);
        if (block.timestamp > deadline) {
            vm.expectRevert(abi.encodeWithSelector(ERC20Permit.ERC2612ExpiredSignature.selector, deadline));
            token.permit(provider, stranger, 1e18, deadline, v, r, s);
            assertEq(token.allowance(provider, stranger), 0, "no allowance");
        } else {
            token.permit(provider, stranger, 1e18, deadline, v, r, s);
            assertEq(token.allowance(provider, stranger), 1e18, "allowance");
        }
    }

    // ------------------------------------------------------------ burn

    function test_burn_shrinksSupplyAndBalance() public {
        uint256 supply = token.totalSupply();
        vm.expectEmit(true, true, false, true, address(token));
        emit IERC20.Transfer(provider, address(0), 3e18);
        vm.prank(provider);
        token.burn(3e18);
        assertEq(token.totalSupply(), supply - 3e18, "supply");
        assertEq(token.balanceOf(provider), FUNDS - 3e18, "balance");
    }

    function test_RevertWhen_burn_aboveBalance() public {
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, provider, FUNDS, FUNDS + 1)
        );
        vm.prank(provider);
        token.burn(FUNDS + 1);
    }

    function test_burnFrom_spendsAllowance() public {
        vm.prank(provider);
        token.approve(stranger, 2e18);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, stranger, 2e18, 3e18));
        vm.prank(stranger);
        token.burnFrom(provider, 3e18);
        uint256 supply = token.totalSupply();
        vm.prank(stranger);
        token.burnFrom(provider, 2e18);
        assertEq(token.totalSupply(), supply - 2e18, "burned");
        assertEq(token.allowance(provider, stranger), 0, "allowance spent");
    }

    function testFuzz_burn_supplyTracksBalances(uint256 amount) public {
        amount = bound(amount, 0, FUNDS);
        uint256 supply = token.totalSupply();
        vm.prank(client);
        token.burn(amount);
        assertEq(supply - token.totalSupply(), amount, "supply shrinks by the burn");
        assertEq(token.balanceOf(client), FUNDS - amount, "balance shrinks by the burn");
    }
}
