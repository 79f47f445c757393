"""FlowNet's chain indexer: log ingestion, reorg handling and SQLite projections.

`indexer.rpc` is the raw JSON-RPC client (batches, bounded retries), `indexer.sync` the ingestion loop
(adaptive eth_getLogs ranges, answer and bloom checks, reorg rollback; ``python -m indexer.sync``),
`indexer.store` the ledger it writes, `indexer.projections` the reducers, `indexer.reconcile` the check
against the chain.
"""
