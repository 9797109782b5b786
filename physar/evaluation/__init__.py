"""PhyWorld's evaluator: parse balls from frames, velocity errors per clip, buckets and reports."""
