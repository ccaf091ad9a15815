"""The soak test of the production path: see soak/__main__.py, run it with `make soak`."""
