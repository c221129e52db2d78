#!/usr/bin/env bash
# README's test command. Runs, in order:
#   1. the xunit suite (dotnet test -c Release), JIT build;
#   2. the process-level CLI tests and the main remote ones again against the Native AOT bcmr (the binary users
#      install), when clang is there to publish it;
#   3. tests/Pester in real pwsh 7.6 against the published module (out/Bcmr).
# pwsh (the .NET tool, version 7.6.10) and Pester 5.7.1 (a NuGet package) are fetched on first use into
# $BCMR_TEST_TOOLS (default ~/.cache/bcmr-test-tools) and the NuGet cache; nothing needs root. Tests that need
# optional system tools (sshd, b3sum, btrfs-progs, attr, qemu-user) skip with the reason; .ci/run installs them all
# and sets BCMR_TEST_REQUIRE_ALL=1 so that no stage may be left out there.
# Ends with one line "N passed, N failed, N skipped" counted from the TRX and NUnit XML files, and exits non-zero
# if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
PWSH_VERSION=7.6.10
PESTER_VERSION=5.7.1
tools_dir=${BCMR_TEST_TOOLS:-$HOME/.cache/bcmr-test-tools}
require_all=${BCMR_TEST_REQUIRE_ALL:-0}
results=TestResults
rm -rf "$results"
mkdir -p "$results"
problems=()

# --- 1. xunit, JIT build -------------------------------------------------------------------------------------------
dotnet test -c Release --logger "trx;LogFileName=results.trx" --results-directory "$results" \
  || problems+=("dotnet test exited non-zero")

# --- 2. CLI and remote tests against the Native AOT bcmr (remote end included: sshd runs it as bcmr serve) --------
# The fault tests (BcmrRunner.FaultHost) run the JIT bcmr-fault-host built in stage 1 in this pass too: the shipped
# binary has no test hooks to switch on, so they check the engine's handling of the fault, not the AOT build.
# Every CLI test, and over ssh what each command does end to end (copy, check, sync, hostile peers, --ssh-persist, one
# striped file both ways, the direct channel with its AES-GCM from OpenSSL). The other remote classes (parallel lanes, stripe faults, codecs, resume rules, names)
# exercise engine logic the JIT pass has just run against the same server; here they would only double the run time.
aot_filter="FullyQualifiedName~Bcmr.Tests.Cli|FullyQualifiedName~Bcmr.Tests.Remote.RemoteCopyTests|FullyQualifiedName~Bcmr.Tests.Remote.CheckTests"
aot_filter+="|FullyQualifiedName~Bcmr.Tests.Remote.SyncRemoteTests|FullyQualifiedName~Bcmr.Tests.Remote.HostilePeerTests"
aot_filter+="|FullyQualifiedName~Bcmr.Tests.Remote.SshPersistTests|FullyQualifiedName~Bcmr.Tests.Remote.StripeTests.A_300_MiB_file_is_striped_both_ways"
aot_filter+="|FullyQualifiedName~Bcmr.Tests.Remote.DirectTransferTests"
aot_filter+="|FullyQualifiedName~Bcmr.Tests.Remote.AllocationTests"
if command -v clang >/dev/null 2>&1; then
  if dotnet publish src/Bcmr.Cli -c Release -p:PublishProfile=aot-linux-x64 >"$results/aot-publish.log" 2>&1; then
    BCMR_TEST_EXE="$PWD/out/bcmr-linux-x64/bcmr" dotnet test tests/Unit -c Release --no-build \
      --filter "$aot_filter" \
      --logger "trx;LogFileName=results-aot.trx" --results-directory "$results" \
      || problems+=("the AOT pass exited non-zero")
  else
    cat "$results/aot-publish.log"
    problems+=("Native AOT publish failed")
  fi
elif [ "$require_all" = 1 ]; then
  problems+=("clang is missing: the Native AOT pass cannot run")
else
  echo "AOT pass: skipped (Native AOT needs clang and zlib1g-dev)"
fi

# --- 3. Pester in real pwsh against the published module -----------------------------------------------------------
pwsh_exe="$tools_dir/pwsh/pwsh"
if [ ! -x "$pwsh_exe" ]; then
  dotnet tool install --tool-path "$tools_dir/pwsh" PowerShell --version "$PWSH_VERSION" >"$results/pwsh-install.log" 2>&1 \
    || { cat "$results/pwsh-install.log"; problems+=("could not install pwsh $PWSH_VERSION"); }
fi
pester_root=${NUGET_PACKAGES:-$HOME/.nuget/packages}/pester/$PESTER_VERSION
if [ ! -f "$pester_root/tools/Pester.psd1" ]; then
  # Pester is a NuGet package; a throwaway project with a PackageDownload puts it in the NuGet cache.
  restore_dir=$(mktemp -d)
  cat >"$restore_dir/pester.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageDownload Include="Pester" Version="[$PESTER_VERSION]" /></ItemGroup>
</Project>
EOF
  dotnet restore "$restore_dir/pester.csproj" >"$results/pester-restore.log" 2>&1 \
    || { cat "$results/pester-restore.log"; problems+=("could not restore Pester $PESTER_VERSION"); }
  rm -rf "$restore_dir"
fi
if [ -x "$pwsh_exe" ] && [ -f "$pester_root/tools/Pester.psd1" ]; then
  if dotnet publish src/Bcmr.Cmdlets -c Release -o out/Bcmr >"$results/module-publish.log" 2>&1; then
    "$pwsh_exe" -NoProfile -NonInteractive -File tools/Invoke-PesterSuite.ps1 \
      -PesterManifest "$pester_root/tools/Pester.psd1" -OutputPath "$results/pester.xml" \
      || problems+=("Pester exited non-zero")
  else
    cat "$results/module-publish.log"
    problems+=("publishing the module failed")
  fi
fi

# --- counts from the result files ----------------------------------------------------------------------------------
passed=0; failed=0; skipped=0
attr() { grep -o "<$1 [^>]*>" "$2" | head -n 1 | grep -o " $3=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
expected=("$results/results.trx" "$results/pester.xml")
[ -f "$results/aot-publish.log" ] && expected+=("$results/results-aot.trx")
for file in "${expected[@]}"; do
  if [ ! -f "$file" ]; then problems+=("missing $file (its stage did not run to the end)"); continue; fi
  case "$file" in
    *.trx)
      passed=$((passed + $(attr Counters "$file" passed)))
      failed=$((failed + $(attr Counters "$file" failed) + $(attr Counters "$file" error) + $(attr Counters "$file" timeout) + $(attr Counters "$file" aborted)))
      # The TRX logger counts a skipped test in total but not in executed (its notExecuted stays 0).
      skipped=$((skipped + $(attr Counters "$file" total) - $(attr Counters "$file" executed)))
      ;;
    *.xml)
      # Pester's NUnit 2.5: total counts every test that was run, skipped and inconclusive ones included
      # (not-run are those a filter left out).
      total=$(attr test-results "$file" total)
      bad=$(( $(attr test-results "$file" errors) + $(attr test-results "$file" failures) ))
      notrun=$(( $(attr test-results "$file" skipped) + $(attr test-results "$file" inconclusive) ))
      passed=$((passed + total - bad - notrun))
      failed=$((failed + bad))
      skipped=$((skipped + notrun))
      ;;
  esac
done
for p in "${problems[@]+"${problems[@]}"}"; do echo "problem: $p"; done
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$failed" -ne 0 ] || [ "${#problems[@]}" -ne 0 ]; then exit 1; fi
