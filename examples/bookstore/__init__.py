"""A small bookstore built on mapper: the example application.

`domain.py` holds the plain entities and business rules, `mappings.py` the tables,
`repositories.py` the named queries, `services.py` the use cases (one unit of work each) and
`__main__.py` a scripted scenario: `python -m examples.bookstore`.
"""
