"""Controllers of the simulated control plane."""
