"""FlowNet's chain indexer: log ingestion, reorg handling and SQLite projections.

The contracts' events already carry everything it needs (see the interfaces in contracts/); the
ingestion loop and projections land with the indexer issue.
"""
