// Usage: bcmr-fault-host <bcmr arguments>
// Runs bcmr with the engine's test hooks set from this host's environment (only here: the shipped bcmr reads none):
//   BCMR_FAULT_CORRUPT_STAGED=substring   flip one byte of each staged copy whose destination path contains the
//                                          substring, after its data is written and before -V reads it back.
//   BCMR_FAULT_SERVE_CAPS=hex               a serve offers at most these capability bits (1f: what bcmr 0.6 has).
//   BCMR_FAULT_STALE_AFTER_MS=n             a staging file untouched and unlocked for n ms is a dead copy's (not 10 s).
using Bcmr.Engine;

if (Environment.GetEnvironmentVariable("BCMR_FAULT_CORRUPT_STAGED") is { Length: > 0 } corrupt)
    TestHooks.CorruptStagedWhenPathContains = corrupt;
if (Environment.GetEnvironmentVariable("BCMR_FAULT_SERVE_CAPS") is { Length: > 0 } caps)
    TestHooks.ServeCapabilityMask = Convert.ToByte(caps, 16);
if (Environment.GetEnvironmentVariable("BCMR_FAULT_STALE_AFTER_MS") is { Length: > 0 } staleMs)
    TestHooks.StaleTemporaryAfter = TimeSpan.FromMilliseconds(int.Parse(staleMs));
return Bcmr.Cli.Program.Main(args);
