// libtorch's default generator (drop path, MAE masks, init) and the process's resident memory are
// process-wide: tests that seed and compare bit for bit, or measure memory, are only repeatable
// when no other test draws random numbers or allocates at the same time. On the 2 cores of CI the
// parallel speed-up is small anyway (libtorch already uses both).
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
