"""mmpc.apps: the `mmpc` command line, configs, the end-to-end bench and the report."""
