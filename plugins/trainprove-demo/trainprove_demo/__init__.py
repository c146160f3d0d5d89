"""The embedded default of trainprove: a real audit of a pool of suspects, offline, on a CPU."""
