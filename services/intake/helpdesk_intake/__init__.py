"""The intake service: every channel in and out, deduplicated and threaded."""
