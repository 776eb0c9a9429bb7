"""Queries against the identity database, one transaction per request."""
