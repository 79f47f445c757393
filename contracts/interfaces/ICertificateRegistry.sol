// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title FlowNet decentralized certificate authority (DeCA)
/// @notice A node publishes its own TLS certificate here from the wallet named in the certificate:
/// the SHA-256 of the certificate's DER, the SHA-256 of its SubjectPublicKeyInfo DER, the IPFS CID of
/// the PEM and its notAfter. A peer accepts a certificate naming wallet `w` only if
/// `isValid(certHash, w)`.
///
/// Certificates are keyed by owner: a record is the pair (owner, certHash), written only by the owner
/// itself (msg.sender), and every check reads the record under the wallet the certificate names
/// (`isValid(certHash, w)`, `status(certHash, w)`, the tunnel and `flownet cert status` alike). A
/// certificate's hash commits to the wallet it names, so only that wallet can ever make it count.
/// Anyone else who registers the same hash (a front-runner copying the owner's `register` call, say)
/// writes a record under its own address that no check of this certificate consults; it cannot block
/// the owner's registration, and revoking that copy revokes nothing of the owner's. There is no global
/// namespace of hashes left to squat.
///
/// Revocation is permanent: a revoked certificate is never valid again, and its owner can never
/// register that hash again, so there is no way to un-revoke. The owner revokes its own certificates;
/// Staking (fixed at deployment) revokes all of an account's certificates at once when it is slashed
/// or fully unbonds. To keep that bounded, an owner holds at most MAX_ACTIVE unrevoked certificates
/// at a time (expired ones count until revoked).
///
/// A certificate also counts only while its owner's stake does: an account that stakes as a provider
/// or a verifier (a role is for life) has valid certificates only while it has stake bonded (active
/// or thawing, so still slashable). A fully unbonded or fully slashed provider or verifier may
/// register certificates, but none of them is valid until it bonds stake again. Clients, who never
/// stake, keep theirs.
/// @dev Every state change emits an event carrying everything an indexer needs (the PEM CID is only
/// in the event, not in storage), so an indexer never reads storage; validity joins the certificate
/// with the owner's stake, which Staking's events carry.
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

    /// @notice One registered certificate of one owner.
    /// @param owner The wallet that registered it, under which it is kept; 0 if it never registered it.
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

    /// @notice `owner` already registered `certHash` (possibly revoked since: it can never register it
    /// again).
    error CertificateAlreadyRegistered(bytes32 certHash, address owner);

    /// @notice `owner` already holds `maximum` unrevoked certificates; revoke one first.
    error CertificateTooManyActive(address owner, uint256 maximum);

    /// @notice `owner` never registered `certHash` (an owner can only revoke its own certificates).
    error CertificateNotRegistered(bytes32 certHash, address owner);

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

    /// @notice Register your own certificate under your address (msg.sender). Both hashes must be
    /// non-zero, `pemCid` 1..MAX_CID_LENGTH bytes, `notAfter` in the future, `certHash` never
    /// registered by you before, and you must hold fewer than MAX_ACTIVE unrevoked certificates.
    /// Whether someone else registered the same hash does not matter: its record is its own.
    /// The registry does not parse the certificate: peers check that the PEM at `pemCid` hashes to
    /// `certHash`, names this wallet, and carries the key hashing to `keyHash`.
    function register(bytes32 certHash, bytes32 keyHash, string calldata pemCid, uint64 notAfter) external;

    /// @notice Revoke your certificate `certHash` (the one registered under your address) for
    /// `reason` (Unspecified, KeyCompromise, Superseded or CessationOfOperation), stating
    /// `compromisedAt` <= now (0 when unknown). Works on expired certificates too (to free their
    /// slot). Permanent.
    function revoke(bytes32 certHash, uint8 reason, uint64 compromisedAt) external;

    /// @notice Staking only: revoke every unrevoked certificate of `owner` for `reason` (Slashed or
    /// Unbonded); returns how many were revoked (0 when there were none; it never reverts for that,
    /// so it cannot block a slash). At most MAX_ACTIVE certificates, so the cost is bounded.
    function revokeAllOf(address owner, uint8 reason) external returns (uint256 revoked);

    /// @notice The record of `certHash` under `owner` (all zero if `owner` never registered it).
    function status(bytes32 certHash, address owner) external view returns (Certificate memory);

    /// @notice True iff `owner` registered `certHash`, has not revoked it, `notAfter` > now, and
    /// `owner`'s stake counts (`stakeCounts`).
    function isValid(bytes32 certHash, address owner) external view returns (bool);

    /// @notice Whether `owner`'s stake lets its certificates count: true for an account that never
    /// staked (a client), and for a provider or verifier while it has stake bonded (active or
    /// thawing); false for a provider or verifier with nothing bonded (fully unbonded or slashed).
    function stakeCounts(address owner) external view returns (bool);

    /// @notice The unrevoked (possibly expired) certificates of `owner`, in no particular order.
    function activeCertificates(address owner) external view returns (bytes32[] memory);

    /// @notice How many unrevoked (possibly expired) certificates `owner` holds.
    function activeCount(address owner) external view returns (uint256);

    /// @notice The only address that may call revokeAllOf.
    function staking() external view returns (address);
}
