"""Content-addressed blobs (provider metadata, receipts' attachments): at most 1 MiB, named by CIDv1.

``open_store(settings)`` is the entry point: a Kubo node when ``ipfs_api`` is set, else the embedded
``LocalStore`` under ``$FLOWNET_HOME/blobs``. Every store verifies on ``get`` that the bytes hash to
the CID, so callers can trust what they receive.
"""

from flownet.blobs.cid import MAX_BLOB_SIZE, cid_for, parse_cid, verify_blob
from flownet.blobs.kubo import KuboStore
from flownet.blobs.store import BlobStore, LocalStore, open_store

__all__ = ["MAX_BLOB_SIZE", "BlobStore", "KuboStore", "LocalStore", "cid_for", "open_store", "parse_cid", "verify_blob"]
