using System.Globalization;
using System.Management.Automation;

namespace Bcmr.Cmdlets.Internal;

/// <summary>Lets a TimeSpan parameter take a plain number as seconds (<c>-RetryDelay 5</c>), where PowerShell's own
/// conversion would read it as ticks; TimeSpan values and strings like '00:00:05' bind as usual.</summary>
internal sealed class SecondsAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var value = inputData is PSObject pso ? pso.BaseObject : inputData;
        return value switch
        {
            int or long or double or float or decimal or short or byte => TimeSpan.FromSeconds(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
            string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) => TimeSpan.FromSeconds(seconds),
            _ => inputData,
        };
    }
}
