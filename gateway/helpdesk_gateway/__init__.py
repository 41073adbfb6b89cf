"""The HTTP gateway: a thin Flask layer that authenticates, validates and calls services over RPC."""
