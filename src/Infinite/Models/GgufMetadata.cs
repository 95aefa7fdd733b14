namespace Infinite.Models;

/// <summary>Typed access to GGUF metadata that turns a missing key or a value of the wrong type into a
/// <see cref="ModelFormatException"/> naming the key and the file.</summary>
internal sealed class GgufMetadata(IReadOnlyDictionary<string, object> values, string path)
{
    public string Path => path;

    public bool Has(string key) => values.ContainsKey(key);

    public ModelFormatException Error(string what) => ModelFormatException.In(path, what);

    private object Required(string key) =>
        values.TryGetValue(key, out var v) ? v : throw Error($"metadata key '{key}' is missing");

    public long Integer(string key) => ToInteger(key, Required(key));

    public long? OptionalInteger(string key) => values.TryGetValue(key, out var v) ? ToInteger(key, v) : null;

    /// <summary>A positive integer that fits in an int (dimensions, counts, token ids are checked separately).</summary>
    public int Positive(string key) => CheckPositive(key, Integer(key));

    public int? OptionalPositive(string key) => OptionalInteger(key) is { } v ? CheckPositive(key, v) : null;

    public float Float(string key) => ToFloat(key, Required(key));

    public float? OptionalFloat(string key) => values.TryGetValue(key, out var v) ? ToFloat(key, v) : null;

    public string String(string key) => Required(key) as string ?? throw WrongType(key, "a string");

    public string? OptionalString(string key) =>
        values.TryGetValue(key, out var v) ? v as string ?? throw WrongType(key, "a string") : null;

    public bool? OptionalBool(string key) =>
        values.TryGetValue(key, out var v) ? v is bool b ? b : throw WrongType(key, "a bool") : null;

    public T[]? OptionalArray<T>(string key, string description) =>
        values.TryGetValue(key, out var v) ? v as T[] ?? throw WrongType(key, description) : null;

    private ModelFormatException WrongType(string key, string expected) =>
        Error($"metadata '{key}' should be {expected}, got {values[key].GetType().Name}");

    private int CheckPositive(string key, long v) =>
        v is > 0 and <= int.MaxValue ? (int)v : throw Error($"metadata '{key}' is {v}, expected a positive 32-bit integer");

    private long ToInteger(string key, object v) => v switch
    {
        byte x => x, sbyte x => x, ushort x => x, short x => x, uint x => x, int x => x, long x => x,
        ulong x when x <= long.MaxValue => (long)x,
        _ => throw Error($"metadata '{key}' should be an integer, got {v} ({v.GetType().Name})"),
    };

    private float ToFloat(string key, object v)
    {
        double d = v switch
        {
            float x => x, double x => x,
            byte or sbyte or ushort or short or uint or int or long or ulong => Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture),
            _ => throw Error($"metadata '{key}' should be a number, got {v} ({v.GetType().Name})"),
        };
        return double.IsFinite(d) ? (float)d : throw Error($"metadata '{key}' is {d}, expected a finite number");
    }
}
