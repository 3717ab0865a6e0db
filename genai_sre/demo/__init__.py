"""`genai-sre demo`: the whole loop on loopback with a simulated upstream, no keys, no network."""
