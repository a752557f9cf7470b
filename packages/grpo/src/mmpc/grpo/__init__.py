"""mmpc.grpo: see the package README section in the root README."""
