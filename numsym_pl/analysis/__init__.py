"""Post-hoc studies and figures."""
