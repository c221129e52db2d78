namespace Bcmr.Engine.Codecs;

/// <summary>A block codec on the wire. The values are the algo bytes of DataCompressed (0 = raw Data frames).</summary>
public enum WireCodec : byte
{
    /// <summary>Raw Data frames.</summary>
    None = 0,
    /// <summary>LZ4 raw block format, no size prefix (bcmr 0.6: lz4_flex::compress).</summary>
    Lz4 = 1,
    /// <summary>One standard zstd frame at level 3 (bcmr 0.6: zstd::bulk).</summary>
    Zstd = 2,
}

/// <summary>The user's choice (<c>--compress</c>, <c>BCMR_COMPRESS</c>): auto takes the best codec both sides have.</summary>
public enum CompressionSetting
{
    Auto,
    Zstd,
    Lz4,
    None,
}

/// <summary>
/// Which codec a connection uses. A side offers capability bits for what its setting allows (auto: LZ4 and Zstd;
/// zstd: Zstd only; lz4: LZ4 only; none: nothing); the effective caps are the AND of both sides, and of what is left,
/// Zstd beats LZ4 beats raw (bcmr 0.6's order). Independently of the codec, each block whose compressed form is larger
/// than 95 % of the original goes raw (<see cref="BlockCodec"/>).
/// </summary>
public static class Compression
{
    /// <summary>The environment variable that applies when no flag is given (<see cref="EngineSettings.Compress"/>).</summary>
    public const string EnvironmentVariable = EngineSettings.CompressVariable;

    /// <summary>Capability bits (same values as Protocol.Caps.Lz4 / Caps.Zstd).</summary>
    public const byte CapLz4 = 0x01;
    public const byte CapZstd = 0x02;

    public static bool TryParse(string? text, out CompressionSetting setting)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "auto": setting = CompressionSetting.Auto; return true;
            case "zstd": setting = CompressionSetting.Zstd; return true;
            case "lz4": setting = CompressionSetting.Lz4; return true;
            case "none": setting = CompressionSetting.None; return true;
            default: setting = CompressionSetting.Auto; return false;
        }
    }

    /// <summary>Parses auto|zstd|lz4|none (any case); anything else is an <see cref="BcmrErrorCode.InvalidArgument"/> error.</summary>
    public static CompressionSetting Parse(string text, string source = "--compress") =>
        TryParse(text, out var s) ? s
        : throw new BcmrException(BcmrErrorCode.InvalidArgument, null, $"{source}: '{text}' is not a compression setting (auto, zstd, lz4 or none)");

    /// <summary>The setting in force: <paramref name="setting"/> (a flag, <c>CopyRequest.Compress</c>) when given, else
    /// <paramref name="fromEnvironment"/> (<see cref="EngineSettings.Compress"/>, <c>BCMR_COMPRESS</c>) when set and not
    /// empty, else auto. An invalid value is an error naming where it came from.</summary>
    public static CompressionSetting Resolve(string? setting, string? fromEnvironment)
    {
        if (setting is not null) return Parse(setting);
        return string.IsNullOrWhiteSpace(fromEnvironment) ? CompressionSetting.Auto : Parse(fromEnvironment, EnvironmentVariable);
    }

    /// <summary>The capability bits a side with this setting offers in Hello/Welcome.</summary>
    public static byte OfferedCaps(CompressionSetting setting) => setting switch
    {
        CompressionSetting.Auto => CapLz4 | CapZstd,
        CompressionSetting.Zstd => CapZstd,
        CompressionSetting.Lz4 => CapLz4,
        _ => 0,
    };

    /// <summary>The codec for a connection: Zstd when the effective caps have it and the setting allows it, else LZ4
    /// likewise, else raw.</summary>
    public static WireCodec Choose(byte effectiveCaps, CompressionSetting setting = CompressionSetting.Auto)
    {
        byte allowed = (byte)(effectiveCaps & OfferedCaps(setting));
        if ((allowed & CapZstd) != 0) return WireCodec.Zstd;
        if ((allowed & CapLz4) != 0) return WireCodec.Lz4;
        return WireCodec.None;
    }

    /// <summary>"zstd", "lz4" or "none".</summary>
    public static string Name(WireCodec codec) => codec switch
    {
        WireCodec.Zstd => "zstd",
        WireCodec.Lz4 => "lz4",
        WireCodec.None => "none",
        _ => $"algo {(byte)codec}",
    };
}
