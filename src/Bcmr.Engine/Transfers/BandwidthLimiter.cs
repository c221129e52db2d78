using System.Diagnostics;
using System.Globalization;

namespace Bcmr.Engine.Transfers;

/// <summary>
/// A token bucket that holds a byte stream to a rate (<c>--bwlimit</c>): call <see cref="Wait"/> (or
/// <see cref="WaitAsync"/>) with the size of each block before sending it. Tokens accrue at
/// <see cref="BytesPerSecond"/> up to a burst of a tenth of a second's worth (at least 64 KiB), so an idle moment does
/// not turn into a burst later; a block larger than the bucket is let through at once and paid for by waiting
/// afterwards (the bucket goes into debt), so 4 MiB blocks at 1 MB/s average exactly 1 MB/s. Thread-safe: several
/// connections may share one limiter to cap their sum.
/// </summary>
public sealed class BandwidthLimiter
{
    private readonly object _lock = new();
    private readonly Func<long> _now;
    private readonly long _ticksPerSecond;
    private readonly double _burst;
    private double _tokens;
    private long _last;

    /// <summary>A limiter at <paramref name="bytesPerSecond"/> (more than 0).</summary>
    public BandwidthLimiter(long bytesPerSecond) : this(bytesPerSecond, Stopwatch.GetTimestamp, Stopwatch.Frequency) { }

    /// <summary>With a clock of our own, for tests: <paramref name="now"/> in ticks of <paramref name="ticksPerSecond"/>.</summary>
    internal BandwidthLimiter(long bytesPerSecond, Func<long> now, long ticksPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerSecond);
        BytesPerSecond = bytesPerSecond;
        _now = now;
        _ticksPerSecond = ticksPerSecond;
        _burst = Math.Max(64 * 1024, bytesPerSecond / 10.0);
        _tokens = _burst;
        _last = now();
    }

    /// <summary>null for 0 (unlimited), else a limiter.</summary>
    public static BandwidthLimiter? Create(long bytesPerSecond) => bytesPerSecond > 0 ? new BandwidthLimiter(bytesPerSecond) : null;

    public long BytesPerSecond { get; }

    /// <summary>Takes <paramref name="bytes"/> from the bucket and returns how long the caller must wait before
    /// sending them (zero when the bucket had them).</summary>
    public TimeSpan Reserve(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_lock)
        {
            long now = _now();
            _tokens = Math.Min(_burst, _tokens + (double)(now - _last) / _ticksPerSecond * BytesPerSecond);
            _last = now;
            _tokens -= bytes;
            return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / BytesPerSecond);
        }
    }

    /// <summary>Blocks until <paramref name="bytes"/> may be sent.</summary>
    public void Wait(long bytes, CancellationToken ct = default)
    {
        var delay = Reserve(bytes);
        if (delay <= TimeSpan.Zero) return;
        if (ct.CanBeCanceled) ct.WaitHandle.WaitOne(delay);
        else Thread.Sleep(delay);
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>Waits asynchronously until <paramref name="bytes"/> may be sent.</summary>
    public Task WaitAsync(long bytes, CancellationToken ct = default)
    {
        var delay = Reserve(bytes);
        return delay <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(delay, ct);
    }

    /// <summary>
    /// Parses a rate as rsync's <c>--bwlimit</c> writes it, except that a plain number is bytes per second (rsync
    /// reads it as KiB/s; issue 9 asks for bytes). Suffixes, any case: <c>k</c>/<c>KiB</c> = 1024, <c>m</c>/<c>MiB</c> =
    /// 1024², <c>g</c>/<c>GiB</c> = 1024³; <c>KB</c>, <c>MB</c>, <c>GB</c> = powers of 1000; <c>b</c> = bytes. A fraction
    /// is allowed ("1.5M"); 0 means unlimited. Examples: "10M" = 10485760, "512k" = 524288, "1.5MB" = 1500000.
    /// </summary>
    public static bool TryParse(string? text, out long bytesPerSecond, out string? error)
    {
        bytesPerSecond = 0;
        error = null;
        var s = text?.Trim() ?? "";
        int end = 0;
        while (end < s.Length && (char.IsAsciiDigit(s[end]) || s[end] == '.')) end++;
        if (end == 0 || !double.TryParse(s.AsSpan(0, end), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
        {
            error = $"'{text}' is not a rate: a number of bytes per second with an optional k, M or G suffix (e.g. 10M)";
            return false;
        }
        double unit = s[end..].ToLowerInvariant() switch
        {
            "" or "b" => 1,
            "k" or "kib" => 1024,
            "m" or "mib" => 1024 * 1024,
            "g" or "gib" => 1024 * 1024 * 1024,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            _ => 0,
        };
        if (unit == 0)
        {
            error = $"'{text}': unknown unit '{s[end..]}' (use k, M or G for powers of 1024, KB, MB or GB for powers of 1000)";
            return false;
        }
        double value = Math.Round(number * unit);
        if (value > long.MaxValue / 2)
        {
            error = $"'{text}' is too large a rate";
            return false;
        }
        if (value < 1 && number > 0)
        {
            error = $"'{text}' is less than one byte per second";
            return false;
        }
        bytesPerSecond = (long)value;
        return true;
    }

    /// <summary><see cref="TryParse"/> that throws <see cref="BcmrException"/> (<see cref="BcmrErrorCode.InvalidArgument"/>).</summary>
    public static long Parse(string text) =>
        TryParse(text, out long rate, out var error) ? rate
        : throw new BcmrException(BcmrErrorCode.InvalidArgument, null, "--bwlimit: " + error);
}
