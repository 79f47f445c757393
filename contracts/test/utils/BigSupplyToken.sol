// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A plain ERC-20 whose supply exceeds uint96, to exercise Staking's overflow guards.
contract BigSupplyToken is ERC20 {
    constructor(address holder, uint256 supply) ERC20("Big", "BIG") {
        _mint(holder, supply);
    }
}
