"""Destinations that receive the period's results: the analytics database and the BI API."""
