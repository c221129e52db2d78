using System.Globalization;

namespace Bcmr.Cli.Output;

internal static class Units
{
    public static string Bytes(double n)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int i = 0;
        while (n >= 1024 && i < units.Length - 1) { n /= 1024; i++; }
        return i == 0 ? $"{n:0} B" : string.Format(CultureInfo.InvariantCulture, "{0:0.0} {1}", n, units[i]);
    }

    public static string Duration(TimeSpan t) =>
        t.TotalSeconds < 60 ? string.Format(CultureInfo.InvariantCulture, "{0:0.00} s", t.TotalSeconds)
        : t.TotalHours < 1 ? $"{(int)t.TotalMinutes}:{t.Seconds:00}"
        : $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}";
}
