// Usage: bcmr-fault-host <bcmr arguments>
// Runs bcmr with the engine's test hooks set from this host's environment (only here: the shipped bcmr reads none):
//   BCMR_FAULT_CORRUPT_STAGED=substring   flip one byte of each staged copy whose destination path contains the
//                                          substring, after its data is written and before -V reads it back.
using Bcmr.Engine;

if (Environment.GetEnvironmentVariable("BCMR_FAULT_CORRUPT_STAGED") is { Length: > 0 } corrupt)
    TestHooks.CorruptStagedWhenPathContains = corrupt;
return Bcmr.Cli.Program.Main(args);
