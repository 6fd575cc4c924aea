"""Compression methods, the calibration runner and the artifact store."""
