"""JSON schemas shipped with the package (probe rows, report, baseline)."""
