"""Feed process: picows connections, decode frames where they lie, publish to the md ring."""
