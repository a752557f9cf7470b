"""mmpc.recsys: see the package README section in the root README."""
