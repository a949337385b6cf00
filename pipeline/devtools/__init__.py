"""Tools for developing the pipeline, not used by a load: the benchmark and the sample generator."""
