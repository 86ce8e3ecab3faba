"""Document stores: the protocol every store implements, the builtin SQLite store, and the
contract suite a third-party store runs in its own tests."""
