"""restplug-auth-oauth: OAuth2 bearer tokens and scopes for restplug."""
