// Live-object counts and the log callback are process-wide, so tests that read them must not overlap.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
