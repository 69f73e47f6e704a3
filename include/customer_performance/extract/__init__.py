"""Extractors: stream one source's rows for the period into staged tables with COPY."""
