"""Example applications built on mapper; each is a package run with `python -m examples.<name>`."""
