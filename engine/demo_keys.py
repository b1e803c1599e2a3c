"""Demo credentials for the local simulator only.

The HMAC pair is the one Binance publishes in its API documentation (so the docs' signature
examples double as test vectors); the Ed25519 key is derived from a fixed, public seed. The
sender refuses to use any of these against a non-loopback URL.
"""
DEMO_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DEMO_API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DEMO_ED25519_SEED = bytes(range(32))  # private key seed; public key = its Ed25519 public half
