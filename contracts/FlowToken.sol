// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Burnable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Burnable.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IFlowToken} from "./interfaces/IFlowToken.sol";

/// @title FlowNet token (see IFlowToken)
contract FlowToken is ERC20Permit, ERC20Burnable, IFlowToken {
    constructor(address holder, uint256 supply) ERC20("FlowNet Token", "FLOW") ERC20Permit("FlowNet Token") {
        if (holder == address(0)) revert FlowTokenInvalidHolder(holder);
        // Staking and the market store amounts in uint96; a supply that fits keeps every amount in range.
        if (supply > type(uint96).max) revert FlowTokenSupplyTooLarge(supply, type(uint96).max);
        _mint(holder, supply);
    }

    /// @inheritdoc IERC20Permit
    function nonces(address owner) public view override(ERC20Permit, IERC20Permit) returns (uint256) {
        return super.nonces(owner);
    }
}
