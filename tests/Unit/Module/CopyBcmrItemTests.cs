using System.Management.Automation;
using System.Security.Cryptography;
using Bcmr.Engine.Hashing;
using Bcmr.Tests.Infrastructure;

namespace Bcmr.Tests.Module;

/// <summary>Copy-BcmrItem in the real PowerShell engine: binding of provider items and strings, results, What if,
/// confirmation and error records. $ExecutionContext.InvokeProvider.ChildItem.Get stands in for Get-ChildItem (the
/// same FileInfo/DirectoryInfo objects with PSPath), which the hosted engine does not have.</summary>
[Collection("Module")]
public sealed class CopyBcmrItemTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly PowerShellSession _ps = new();
    private readonly string _src, _dst;

    public CopyBcmrItemTests()
    {
        _src = _dir["src"];
        _dst = _dir["dst"];
        Directory.CreateDirectory(_dst);
        _dir.WriteRandom("src/a.txt", 1000, 1);
        _dir.WriteRandom("src/b.bin", 3_000_000, 2);
        _dir.WriteRandom("src/[1].txt", 77, 3);
        _dir.WriteRandom("src/1.txt", 55, 4);
        _dir.WriteRandom("src/sub/deep/c.txt", 12345, 5);
        _dir.WriteFile("src/empty.txt", []);
    }

    public void Dispose()
    {
        _ps.Dispose();
        _dir.Dispose();
    }

    /// <summary>Runs a script inside try/catch: only a terminating error is caught there (non-terminating ones are not,
    /// without -ErrorAction Stop), so getting a record back proves the error was terminating.</summary>
    private ErrorRecord Terminating(string script, params object[] args)
    {
        var r = _ps.Run("try { " + script + " ; 'no terminating error' } catch { $_ }", args);
        var caught = r.Output.Select(o => o.BaseObject).OfType<ErrorRecord>().ToList();
        Assert.True(caught.Count == 1, "expected a terminating error: " + r);
        return caught[0];
    }

    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private void AssertSameTree(string from, string to)
    {
        var want = Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(from, f)).Order().ToList();
        var got = Directory.EnumerateFiles(to, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(to, f)).Order().ToList();
        Assert.Equal(want, got);
        foreach (var rel in want) Assert.True(Sha(Path.Combine(from, rel)) == Sha(Path.Combine(to, rel)), $"{rel} differs");
    }

    [Fact]
    public void Provider_items_piped_in_are_copied_byte_identically_with_typed_results()
    {
        var r = _ps.Run("$ExecutionContext.InvokeProvider.ChildItem.Get($args[0], $false) | Copy-BcmrItem -Destination $args[1] -Recurse -PassThru -Summary -Verify", _src, _dst);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        AssertSameTree(_src, _dst);

        var results = r.Output.Where(o => o.TypeNames[0] == "Bcmr.CopyResult").ToList();
        Assert.Equal(6, results.Count); // every file, the nested one too
        foreach (dynamic o in results)
        {
            string dst = o.Destination;
            Assert.Equal(new FileInfo(dst).Length, (long)o.Bytes); // a number, not a formatted string
            Assert.Equal(Blake3.ToHex(Blake3.Hash(File.ReadAllBytes(dst))), (string)o.Blake3);
            Assert.Equal("Copied", o.Status.ToString());
        }
        var summary = r.Output.Last();
        Assert.Equal("Bcmr.TransferSummary", summary.TypeNames[0]);
        Assert.Equal(6, (int)summary.Properties["Files"].Value);
        Assert.Equal(Directory.EnumerateFiles(_src, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length), (long)summary.Properties["Bytes"].Value);
        Assert.Equal(0, (int)summary.Properties["Failed"].Value);
        Assert.IsType<double>(summary.Properties["BytesPerSecond"].Value);
        Assert.IsType<TimeSpan>(summary.Properties["Duration"].Value);
    }

    [Fact]
    public void Without_PassThru_nothing_is_written_and_the_summary_goes_to_the_information_stream()
    {
        var r = _ps.Run("Copy-BcmrItem $args[0] $args[1] -InformationVariable info; $info.MessageData.Files; $info.Tags", Path.Combine(_src, "a.txt"), _dst);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        Assert.Equal(["1", "Bcmr", "Summary"], r.Output.Select(o => o.ToString()));
        Assert.Equal(Sha(Path.Combine(_src, "a.txt")), Sha(Path.Combine(_dst, "a.txt")));
    }

    [Fact]
    public void Path_strings_by_position_by_value_and_relative_to_the_current_location()
    {
        var r = _ps.Run("$ExecutionContext.SessionState.Path.SetLocation($args[0]) | Out-Null; 'a.txt', './b.bin' | Copy-BcmrItem -Destination ../dst -PassThru", _src);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        Assert.Equal(2, r.Objects<object>().Count(o => o.GetType().FullName == "Bcmr.CopyResult"));
        Assert.Equal(Sha(Path.Combine(_src, "a.txt")), Sha(Path.Combine(_dst, "a.txt")));
        Assert.Equal(Sha(Path.Combine(_src, "b.bin")), Sha(Path.Combine(_dst, "b.bin")));
    }

    [Fact]
    public void LiteralPath_takes_wildcard_characters_literally_and_Path_expands_them()
    {
        var r = _ps.Run("Copy-BcmrItem -LiteralPath $args[0] -Destination $args[1]", Path.Combine(_src, "[1].txt"), _dst);
        Assert.True(r.Errors.Count == 0, r.ToString());
        Assert.Equal(Sha(Path.Combine(_src, "[1].txt")), Sha(Path.Combine(_dst, "[1].txt")));
        Assert.False(File.Exists(Path.Combine(_dst, "1.txt")));

        // -Path reads [1] as a character class: it means 1.txt.
        var other = _dir["other"];
        Directory.CreateDirectory(other);
        r = _ps.Run("Copy-BcmrItem -Path $args[0] -Destination $args[1]", Path.Combine(_src, "[1].txt"), other);
        Assert.True(r.Errors.Count == 0, r.ToString());
        Assert.Equal(["1.txt"], Directory.GetFiles(other).Select(Path.GetFileName));

        // The alias LP binds too.
        var third = _dir["third"];
        Directory.CreateDirectory(third);
        r = _ps.Run("Copy-BcmrItem -LP $args[0] $args[1]", Path.Combine(_src, "[1].txt"), third);
        Assert.Equal(["[1].txt"], Directory.GetFiles(third).Select(Path.GetFileName));
    }

    [Fact]
    public void Objects_with_a_FullName_bind_to_LiteralPath()
    {
        var r = _ps.Run("[pscustomobject]@{ FullName = $args[0] }, [pscustomobject]@{ FullName = $args[1] } | Copy-BcmrItem -Destination $args[2]",
            Path.Combine(_src, "[1].txt"), Path.Combine(_src, "a.txt"), _dst);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        Assert.Equal(["[1].txt", "a.txt"], Directory.GetFiles(_dst).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Path_wildcards_expand_through_the_provider()
    {
        var r = _ps.Run("Copy-BcmrItem ($args[0] + '/*.txt') $args[1] -PassThru", _src, _dst);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        Assert.Equal(["1.txt", "[1].txt", "a.txt", "empty.txt"], Directory.GetFiles(_dst).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.False(File.Exists(Path.Combine(_dst, "b.bin")));
    }

    [Fact]
    public void WhatIf_copies_nothing_and_prints_one_line_per_item()
    {
        var r = _ps.Run("$ExecutionContext.InvokeProvider.ChildItem.Get($args[0], $false) | Copy-BcmrItem -Destination $args[1] -Recurse -WhatIf", _src, _dst);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dst));
        Assert.Empty(r.Output);
        var whatIf = r.HostLines.Where(l => l.StartsWith("What if: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(6, whatIf.Count); // five files and one directory at the top level
        Assert.Contains($"What if: Performing the operation \"Copy File\" on target \"Item: {Path.Combine(_src, "a.txt")} Destination: {Path.Combine(_dst, "a.txt")}\".", whatIf);
        Assert.Contains($"What if: Performing the operation \"Copy Directory\" on target \"Item: {Path.Combine(_src, "sub")} Destination: {Path.Combine(_dst, "sub")}\".", whatIf);
    }

    [Fact]
    public void Confirm_asks_per_item_and_copies_only_what_was_accepted()
    {
        _ps.ConfirmAnswers.Enqueue(0); // Yes
        _ps.ConfirmAnswers.Enqueue(2); // No
        var r = _ps.Run("Copy-BcmrItem $args[0], $args[1] $args[2] -Confirm", Path.Combine(_src, "a.txt"), Path.Combine(_src, "b.bin"), _dst);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        Assert.Equal(2, _ps.ConfirmQuestions.Count);
        Assert.Contains(Path.Combine(_src, "b.bin"), _ps.ConfirmQuestions[1]);
        Assert.Equal(["a.txt"], Directory.GetFiles(_dst).Select(Path.GetFileName));
    }

    [Fact]
    public void A_missing_source_among_good_ones_gives_one_ObjectNotFound_record_and_the_others_are_copied()
    {
        var missing = Path.Combine(_src, "nope.txt");
        var r = _ps.Run("Copy-BcmrItem $args[0], $args[1], $args[2] $args[3] -Summary", Path.Combine(_src, "a.txt"), missing, Path.Combine(_src, "b.bin"), _dst);
        Assert.Null(r.Terminating);
        var e = Assert.Single(r.Errors);
        Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
        Assert.Equal("BcmrNotFound,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", e.FullyQualifiedErrorId);
        Assert.Equal(missing, e.TargetObject);
        Assert.Equal(Sha(Path.Combine(_src, "a.txt")), Sha(Path.Combine(_dst, "a.txt")));
        Assert.Equal(Sha(Path.Combine(_src, "b.bin")), Sha(Path.Combine(_dst, "b.bin")));
        Assert.Equal(2, (int)r.Output.Single().Properties["Files"].Value);
    }

    [Fact]
    public void Missing_literal_path_and_unmatched_wildcard_are_ObjectNotFound_too()
    {
        var r = _ps.Run("Copy-BcmrItem -LiteralPath $args[0] $args[1]; Copy-BcmrItem $args[2] $args[1]", Path.Combine(_src, "[9].txt"), _dst, Path.Combine(_src, "*.none"));
        Assert.Equal(2, r.Errors.Count);
        Assert.All(r.Errors, e => Assert.Equal(ErrorCategory.ObjectNotFound, e.CategoryInfo.Category));
        Assert.Empty(r.Output); // nothing to copy: no engine run, no summary
    }

    [Fact]
    public void With_NoClobber_an_existing_destination_is_ResourceExists_and_untouched_without_it_it_is_replaced_keeping_LastWriteTime()
    {
        File.WriteAllText(Path.Combine(_dst, "a.txt"), "keep me");
        var source = Path.Combine(_src, "a.txt");
        File.SetLastWriteTimeUtc(source, new DateTime(2020, 2, 3, 4, 5, 6, DateTimeKind.Utc));
        var r = _ps.Run("$ExecutionContext.InvokeProvider.Item.Get($args[0]) | Copy-BcmrItem -Destination $args[1] -Summary -NoClobber", source, _dst);
        var e = Assert.Single(r.Errors);
        Assert.Equal(ErrorCategory.ResourceExists, e.CategoryInfo.Category);
        Assert.Equal("BcmrAlreadyExists,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", e.FullyQualifiedErrorId);
        Assert.Contains(source, e.TargetObject?.ToString()); // the item the user piped in (its PSPath)
        Assert.Contains("(kept because of -NoClobber)", e.Exception.Message);
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(_dst, "a.txt")));
        Assert.Equal(1, (int)r.Output.Single().Properties["Failed"].Value);

        r = _ps.Run("Copy-BcmrItem $args[0] $args[1]", source, _dst);
        Assert.Empty(r.Errors);
        Assert.Equal(Sha(source), Sha(Path.Combine(_dst, "a.txt")));
        Assert.Equal(File.GetLastWriteTimeUtc(source), File.GetLastWriteTimeUtc(Path.Combine(_dst, "a.txt")));
    }

    [Fact]
    public void A_trailing_separator_means_an_existing_directory_as_with_cp()
    {
        var r = _ps.Run("Copy-BcmrItem $args[0] ($args[1] + '/newname/')", Path.Combine(_src, "a.txt"), _dst);
        var e = Assert.Single(r.Errors);
        Assert.Equal("BcmrNotADirectory,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", e.FullyQualifiedErrorId);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dst));
        r = _ps.Run("Copy-BcmrItem $args[0] ($args[1] + '/newname')", Path.Combine(_src, "a.txt"), _dst);
        Assert.Empty(r.Errors);
        Assert.Equal(Sha(Path.Combine(_src, "a.txt")), Sha(Path.Combine(_dst, "newname")));
    }

    [Fact]
    public void A_directory_without_Recurse_fails_alone()
    {
        var r = _ps.Run("Copy-BcmrItem $args[0], $args[1] $args[2]", Path.Combine(_src, "sub"), Path.Combine(_src, "a.txt"), _dst);
        var e = Assert.Single(r.Errors);
        Assert.Equal("BcmrIsADirectory,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", e.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
        Assert.True(File.Exists(Path.Combine(_dst, "a.txt")));
        Assert.False(Directory.Exists(Path.Combine(_dst, "sub")));
    }

    [Fact]
    public void Several_sources_into_a_file_is_a_terminating_error_and_nothing_is_copied()
    {
        var target = Path.Combine(_dst, "file");
        File.WriteAllText(target, "x");
        var caught = Terminating("Copy-BcmrItem $args[0], $args[1] $args[2] -Force", Path.Combine(_src, "a.txt"), Path.Combine(_src, "b.bin"), target);
        Assert.Equal(ErrorCategory.InvalidArgument, caught.CategoryInfo.Category);
        Assert.Equal("BcmrNotADirectory,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", caught.FullyQualifiedErrorId);
        Assert.Equal("x", File.ReadAllText(target));
    }

    [Fact]
    public void Non_FileSystem_paths_are_refused_clearly()
    {
        var r = _ps.Run("Copy-BcmrItem Env:/PATH $args[0]; Copy-BcmrItem -LiteralPath Variable:/PSHOME $args[0]", _dst);
        Assert.Equal(2, r.Errors.Count);
        Assert.All(r.Errors, e =>
        {
            Assert.Equal("NotFileSystemPath,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", e.FullyQualifiedErrorId);
            Assert.Equal(ErrorCategory.InvalidArgument, e.CategoryInfo.Category);
            Assert.Contains("is not a FileSystem path", e.Exception.Message);
        });
        var t = Terminating("Copy-BcmrItem $args[0] Env:/X", Path.Combine(_src, "a.txt"));
        Assert.Equal("NotFileSystemPath,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", t.FullyQualifiedErrorId);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dst));
    }

    [Fact]
    public void A_PSDrive_prefix_is_local_even_when_it_looks_like_a_host()
    {
        // A drive named like a host: the destination must stay local (resolved through the drive's root).
        var r = _ps.Run("""
            $fs = $ExecutionContext.SessionState.Provider.GetOne('FileSystem')
            $null = $ExecutionContext.SessionState.Drive.New([System.Management.Automation.PSDriveInfo]::new('build01', $fs, $args[1], '', $null), 'global')
            Copy-BcmrItem $args[0] build01:/ -PassThru
            """, Path.Combine(_src, "a.txt"), _dst);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        Assert.Equal(Sha(Path.Combine(_src, "a.txt")), Sha(Path.Combine(_dst, "a.txt")));
    }

    [Fact]
    public void Exclude_takes_wildcards_matched_against_names_at_any_depth()
    {
        var r = _ps.Run("Copy-BcmrItem $args[0] $args[1] -Recurse -Exclude '*.bin', 'deep'", _src, _dst);
        Assert.True(r.Errors.Count == 0 && r.Terminating is null, r.ToString());
        var copied = Path.Combine(_dst, "src");
        Assert.True(File.Exists(Path.Combine(copied, "a.txt")));
        Assert.False(File.Exists(Path.Combine(copied, "b.bin")));
        Assert.True(Directory.Exists(Path.Combine(copied, "sub")));
        Assert.False(Directory.Exists(Path.Combine(copied, "sub", "deep")));
    }

    [Fact]
    public void Invalid_parameter_values_are_refused_by_binding()
    {
        var e = Terminating("Copy-BcmrItem $args[0] $args[1] -Jobs 0", Path.Combine(_src, "a.txt"), _dst);
        Assert.Equal("ParameterArgumentValidationError,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", e.FullyQualifiedErrorId);
        e = Terminating("Copy-BcmrItem $args[0] $args[1] -Compress brotli", Path.Combine(_src, "a.txt"), _dst);
        Assert.Equal("ParameterArgumentValidationError,Bcmr.Cmdlets.Commands.CopyBcmrItemCommand", e.FullyQualifiedErrorId);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dst));
    }
}
