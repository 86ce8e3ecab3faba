"""Cache backends: the protocol a cache plugin implements, the core's cache manager, the builtin
in-process cache, and the contract suite a third-party cache runs in its own tests."""
