"""Search indexes: the protocol a search plugin implements, the builtin SQLite FTS5 index, and
the indexer that keeps an index in step with the store."""
