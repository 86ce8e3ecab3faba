"""Method filters and sort methods for restplug, each its own plugin (entry point)."""
