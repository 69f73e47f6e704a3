"""The validation gate: Great Expectations suites run in the analytics database."""
