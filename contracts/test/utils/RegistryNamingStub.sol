// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Stands in for Staking in tests of CertificateRegistry alone: it only names the registry
/// (what the registry's constructor checks); the tests prank as its address to call revokeAllOf.
contract RegistryNamingStub {
    /// @notice The registry this stub names, as Staking.certificateRegistry() does.
    address public immutable certificateRegistry;

    constructor(address certificateRegistry_) {
        certificateRegistry = certificateRegistry_;
    }
}
