"""trainprove on Ray: `[executor] use = "ray"` (see `trainprove_ray.executor`)."""
