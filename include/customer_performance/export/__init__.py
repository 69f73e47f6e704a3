"""Stakeholder exports: the period's CSV files, written to the export location and emailed."""
