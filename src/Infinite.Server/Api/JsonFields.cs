using System.Text.Json;

namespace Infinite.Server.Api;

/// <summary>Typed reads of a request object's fields; a wrong type fails with a 400 that names the field, and a
/// JSON null reads as absent, as OpenAI treats it.</summary>
internal readonly struct JsonFields
{
    private readonly JsonElement _object;
    private readonly string _prefix;

    public JsonFields(JsonElement obj, string prefix = "")
    {
        _object = obj;
        _prefix = prefix;
    }

    public string PathOf(string name) => _prefix + name;

    public bool TryGet(string name, out JsonElement value)
    {
        if (_object.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
            return true;
        value = default;
        return false;
    }

    public string? String(string name)
    {
        if (!TryGet(name, out JsonElement v))
            return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw WrongType(name, "a string", v);
    }

    public string RequiredString(string name)
        => String(name) ?? throw ApiException.BadRequest($"Missing required parameter: '{PathOf(name)}'.", PathOf(name),
            "missing_required_parameter");

    public bool? Bool(string name)
    {
        if (!TryGet(name, out JsonElement v))
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(name, "a boolean", v),
        };
    }

    public long? Long(string name)
    {
        if (!TryGet(name, out JsonElement v))
            return null;
        if (v.ValueKind != JsonValueKind.Number)
            throw WrongType(name, "an integer", v);
        return v.TryGetInt64(out long value)
            ? value
            : throw ApiException.BadRequest($"Invalid value for '{PathOf(name)}': expected an integer, got {v.GetRawText()}.",
                PathOf(name), "invalid_value");
    }

    public int? Int(string name)
    {
        long? value = Long(name);
        if (value is null)
            return null;
        return value is >= int.MinValue and <= int.MaxValue
            ? (int)value.Value
            : throw ApiException.BadRequest($"Invalid value for '{PathOf(name)}': {value} is out of range.", PathOf(name),
                "invalid_value");
    }

    public float? Float(string name)
    {
        if (!TryGet(name, out JsonElement v))
            return null;
        if (v.ValueKind != JsonValueKind.Number)
            throw WrongType(name, "a number", v);
        // TryGetDouble fails on numbers beyond double's range (1e400); those are bad values, not a server error.
        return v.TryGetDouble(out double value) && double.IsFinite(value) && Math.Abs(value) <= float.MaxValue
            ? (float)value
            : throw ApiException.BadRequest($"Invalid value for '{PathOf(name)}': {v.GetRawText()} is out of range.",
                PathOf(name), "invalid_value");
    }

    public JsonFields? Object(string name)
    {
        if (!TryGet(name, out JsonElement v))
            return null;
        return v.ValueKind == JsonValueKind.Object
            ? new JsonFields(v, PathOf(name) + ".")
            : throw WrongType(name, "an object", v);
    }

    public ApiException WrongType(string name, string expected, JsonElement got)
        => ApiException.InvalidType(PathOf(name), expected, Describe(got));

    public static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}
