"""The bookstore's own tests: domain rules, repositories and services, on any database.

`pytest examples/bookstore/tests` runs them on `memory://`, with no database server; list
real databases in MAPPER_TEST_URLS (comma-separated) to run every test on those as well.
"""
