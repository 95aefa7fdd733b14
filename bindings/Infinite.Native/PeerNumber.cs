using System.Globalization;
using System.Text.RegularExpressions;

namespace Infinite.Native;

/// <summary>
/// Reads the peer rank out of a communicator's message ("peer 3 is gone ..."). The C ABI reports a failed peer
/// only in the message text, so this is best effort: a message without "peer N" yields null.
/// </summary>
internal static partial class PeerNumber
{
    public static int? Parse(string message)
    {
        Match match = Pattern().Match(message ?? string.Empty);
        return match.Success && int.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out int peer)
            ? peer
            : null;
    }

    [GeneratedRegex(@"\bpeer (\d+)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();
}
