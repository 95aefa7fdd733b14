using System.Text;

namespace Infinite.Engine;

/// <summary>
/// Finds stop strings in streamed text. Text that could still be the beginning of a stop string is held back until
/// the following text decides it, so a stop spanning several tokens is caught and never reaches the consumer.
/// </summary>
public sealed class StopStringMatcher
{
    private readonly string[] _stops;
    private readonly StringBuilder _held = new();

    public StopStringMatcher(IReadOnlyList<string>? stops)
    {
        _stops = stops is null ? [] : [.. stops];
        foreach (string stop in _stops)
        {
            if (string.IsNullOrEmpty(stop))
                throw new ArgumentException("Stop strings must not be null or empty.", nameof(stops));
        }
    }

    /// <summary>Adds text; returns what can be released now and whether a stop string was found (the released
    /// text then ends just before it).</summary>
    public string Append(string text, out bool stopped)
    {
        ArgumentNullException.ThrowIfNull(text);
        _held.Append(text);
        stopped = false;
        if (_stops.Length == 0)
            return TakeHeld(_held.Length);
        string held = _held.ToString();
        int first = -1;
        foreach (string stop in _stops)
        {
            int at = held.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first))
                first = at;
        }
        if (first >= 0)
        {
            stopped = true;
            _held.Clear();
            return held[..first];
        }
        return TakeHeld(held.Length - LongestStopPrefixSuffix(held));
    }

    /// <summary>Releases everything still held (the stream ended without a stop string).</summary>
    public string Flush() => TakeHeld(_held.Length);

    private string TakeHeld(int length)
    {
        string released = _held.ToString(0, length);
        _held.Remove(0, length);
        return released;
    }

    /// <summary>Length of the longest suffix of <paramref name="text"/> that is a proper prefix of a stop string.</summary>
    private int LongestStopPrefixSuffix(string text)
    {
        int best = 0;
        foreach (string stop in _stops)
        {
            for (int k = Math.Min(stop.Length - 1, text.Length); k > best; k--)
            {
                if (text.AsSpan(text.Length - k).SequenceEqual(stop.AsSpan(0, k)))
                {
                    best = k;
                    break;
                }
            }
        }
        return best;
    }
}
