"""restplug-admin: a web UI at ``/admin/`` over every resource's HTTP API."""
