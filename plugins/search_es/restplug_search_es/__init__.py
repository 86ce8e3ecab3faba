"""restplug-search-es."""
