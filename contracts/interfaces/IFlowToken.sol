// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";

/// @title FlowNet payment and stake token
/// @notice An ERC-20 with EIP-2612 permit and OpenZeppelin's ERC20Burnable (`burn`, `burnFrom`). The
/// whole supply is minted once, at deployment, to one holder; there is no mint afterwards, so the
/// supply only ever shrinks, every balance fits in a uint96 and the staking and market contracts can
/// pack amounts safely. The SlashingManager burns the part of every slash it does not pay as a reward.
interface IFlowToken is IERC20, IERC20Permit {
    /// @notice Thrown by the constructor when the supply does not fit in a uint96.
    error FlowTokenSupplyTooLarge(uint256 supply, uint256 max);

    /// @notice Thrown by the constructor when the initial holder is the zero address.
    error FlowTokenInvalidHolder(address holder);
}
