"""Built-in code scorers: no network, deterministic."""
