// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IStaking} from "../../interfaces/IStaking.sol";

/// @notice Stands in for Staking in tests of CertificateRegistry alone: it names the registry (what the
/// registry's constructor checks) and answers `stakeOf` with whatever a test set (all zero, i.e. an
/// account that never staked, by default); the tests prank as its address to call revokeAllOf.
contract RegistryNamingStub {
    /// @notice The registry this stub names, as Staking.certificateRegistry() does.
    address public immutable certificateRegistry;

    mapping(address account => IStaking.StakeInfo) private _stakes;

    constructor(address certificateRegistry_) {
        certificateRegistry = certificateRegistry_;
    }

    /// @notice Make `stakeOf(account)` answer `role`, `active` and `thawing`.
    function setStake(address account, IStaking.Role role, uint96 active, uint96 thawing) external {
        _stakes[account] = IStaking.StakeInfo(active, 0, 0, thawing, 0, role);
    }

    /// @notice As Staking.stakeOf.
    function stakeOf(address account) external view returns (IStaking.StakeInfo memory) {
        return _stakes[account];
    }
}
