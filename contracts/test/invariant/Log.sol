// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice The two console.log overloads the invariant summary needs (forge-std is not available).
/// Forge decodes calls to this address and prints them with -vv.
library Log {
    address internal constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;

    function log(string memory message) internal view {
        _send(abi.encodeWithSignature("log(string)", message));
    }

    function log(string memory message, uint256 value) internal view {
        _send(abi.encodeWithSignature("log(string,uint256)", message, value));
    }

    function _send(bytes memory payload) private view {
        address console = CONSOLE;
        assembly ("memory-safe") {
            pop(staticcall(gas(), console, add(payload, 32), mload(payload), 0, 0))
        }
    }
}
