"""Transformations inside the analytics database: filter, calculate, aggregate."""
