// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title FlowNet decentralized certificate authority (DeCA)
/// @notice A node publishes its own TLS certificate here from the wallet named in the certificate:
/// the SHA-256 of the certificate's DER, the SHA-256 of its SubjectPublicKeyInfo DER, the IPFS CID of
/// the PEM and its notAfter. A peer accepts a certificate for wallet `w` only if `isValid(certHash, w)`.
/// Revocation is permanent: a revoked certificate is never valid again, and its hash can never be
/// registered again (by anyone), so there is no way to un-revoke. The owner revokes its own
/// certificates; Staking (fixed at deployment) revokes all of an account's certificates at once when
/// it is slashed or fully unbonds. To keep that bounded, an owner holds at most MAX_ACTIVE
/// unrevoked certificates at a time (expired ones count until revoked).
/// @dev Every state change emits an event carrying everything an indexer needs (the PEM CID is only
/// in the event, not in storage), so an indexer never reads storage.
interface ICertificateRegistry {
    /// @notice Why a certificate was revoked; a subset of RFC 5280 CRLReason plus FlowNet's own.
    /// `Slashed` and `Unbonded` are reserved to Staking.
    enum RevocationReason {
        Unspecified,
        KeyCompromise,
        Superseded,
        CessationOfOperation,
        Slashed,
        Unbonded
    }

    /// @notice One registered certificate.
    /// @param owner The wallet that registered it (the wallet named in the certificate); 0 if never registered.
    /// @param keyHash SHA-256 of the certificate's SubjectPublicKeyInfo DER.
    /// @param notAfter End of the certificate's validity (unix seconds).
    /// @param registeredAt When it was registered (unix seconds).
    /// @param revoked Whether it was revoked; once true, forever true.
    /// @param revokedAt When it was revoked (unix seconds); 0 while not revoked.
    /// @param compromisedAt When the key is known or suspected to have been compromised (RFC 5280
    /// invalidityDate); 0 when not stated.
    /// @param reason Why it was revoked (Unspecified while not revoked).
    struct Certificate {
        address owner;
        bytes32 keyHash;
        uint64 notAfter;
        uint64 registeredAt;
        bool revoked;
        uint64 revokedAt;
        uint64 compromisedAt;
        RevocationReason reason;
    }

    /// @notice `owner` registered certificate `certHash` for key `keyHash`, valid until `notAfter`;
    /// its PEM is at `pemCid`.
    event CertificateRegistered(
        bytes32 indexed certHash, address indexed owner, bytes32 keyHash, string pemCid, uint64 notAfter
    );

    /// @notice Certificate `certHash` of `owner` was revoked at `revokedAt` for `reason`;
    /// `compromisedAt` is the stated compromise time (0 when not stated).
    event CertificateRevoked(
        bytes32 indexed certHash, address indexed owner, RevocationReason reason, uint64 revokedAt, uint64 compromisedAt
    );

    /// @notice The certificate hash or the key hash is zero.
    error CertificateZeroHash(bytes32 certHash, bytes32 keyHash);

    /// @notice The PEM CID is empty or longer than `maxLength` bytes.
    error CertificateInvalidPemCid(uint256 length, uint256 maxLength);

    /// @notice `notAfter` is not after the current time `now`.
    error CertificateInvalidNotAfter(uint64 notAfter, uint256 now);

    /// @notice `certHash` was already registered by `owner` (possibly revoked since: it can never be
    /// registered again).
    error CertificateAlreadyRegistered(bytes32 certHash, address owner);

    /// @notice `owner` already holds `maximum` unrevoked certificates; revoke one first.
    error CertificateTooManyActive(address owner, uint256 maximum);

    /// @notice `certHash` was never registered.
    error CertificateNotRegistered(bytes32 certHash);

    /// @notice `caller` is not `owner`, the owner of `certHash`.
    error CertificateNotOwner(bytes32 certHash, address caller, address owner);

    /// @notice `certHash` was already revoked at `revokedAt`.
    error CertificateAlreadyRevoked(bytes32 certHash, uint64 revokedAt);

    /// @notice `reason` is not a RevocationReason this caller may use (owners: Unspecified,
    /// KeyCompromise, Superseded, CessationOfOperation; Staking: Slashed, Unbonded).
    error CertificateInvalidReason(uint8 reason);

    /// @notice The stated compromise time lies after the current time `now`.
    error CertificateInvalidCompromisedAt(uint64 compromisedAt, uint256 now);

    /// @notice `caller` is not the address allowed to call this function (`allowed`).
    error CertificateUnauthorized(address caller, address allowed);

    /// @notice A constructor argument is invalid; `name` says which.
    error CertificateInvalidConfig(string name);

    /// @notice Register your own certificate; you (msg.sender) become its owner. Both hashes must be
    /// non-zero, `pemCid` 1..MAX_CID_LENGTH bytes, `notAfter` in the future, `certHash` never
    /// registered before, and you must hold fewer than MAX_ACTIVE unrevoked certificates.
    /// The registry does not parse the certificate: peers check that the PEM at `pemCid` hashes to
    /// `certHash`, names this wallet, and carries the key hashing to `keyHash`.
    function register(bytes32 certHash, bytes32 keyHash, string calldata pemCid, uint64 notAfter) external;

    /// @notice Owner only: revoke your certificate `certHash` for `reason` (Unspecified, KeyCompromise,
    /// Superseded or CessationOfOperation), stating `compromisedAt` <= now (0 when unknown). Works on
    /// expired certificates too (to free their slot). Permanent.
    function revoke(bytes32 certHash, uint8 reason, uint64 compromisedAt) external;

    /// @notice Staking only: revoke every unrevoked certificate of `owner` for `reason` (Slashed or
    /// Unbonded); returns how many were revoked (0 when there were none; it never reverts for that,
    /// so it cannot block a slash). At most MAX_ACTIVE certificates, so the cost is bounded.
    function revokeAllOf(address owner, uint8 reason) external returns (uint256 revoked);

    /// @notice The record of `certHash` (all zero if never registered).
    function status(bytes32 certHash) external view returns (Certificate memory);

    /// @notice True iff `certHash` is registered to `owner`, not revoked, and `notAfter` > now.
    function isValid(bytes32 certHash, address owner) external view returns (bool);

    /// @notice The unrevoked (possibly expired) certificates of `owner`, in no particular order.
    function activeCertificates(address owner) external view returns (bytes32[] memory);

    /// @notice How many unrevoked (possibly expired) certificates `owner` holds.
    function activeCount(address owner) external view returns (uint256);

    /// @notice The only address that may call revokeAllOf.
    function staking() external view returns (address);
}
