"""Backends. Each `dialects/<name>.py` imports its driver lazily; `base.py` and `sql.py` are
shared by the SQL backends. Loaded by name from `database.connect`."""
