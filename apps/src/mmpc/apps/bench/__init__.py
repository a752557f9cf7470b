"""The end-to-end bench: a resumable stage runner and the MMPCBench pipeline built on it."""
