using System.Text.Json;

namespace Infinite.Tokenization;

/// <summary>Typed accessors over one parsed JSON file whose errors name the file and the key.</summary>
internal sealed class JsonFile(string path, JsonElement root)
{
    public string Path { get; } = path;
    public JsonElement Root { get; } = root;

    public JsonElement Object(JsonElement parent, string key) => Get(parent, key, JsonValueKind.Object, "an object");

    public JsonElement.ArrayEnumerator Array(JsonElement parent, string key) =>
        Get(parent, key, JsonValueKind.Array, "an array").EnumerateArray();

    public string String(JsonElement parent, string key) => Get(parent, key, JsonValueKind.String, "a string").GetString()!;

    public int Int(JsonElement parent, string key)
    {
        var value = Get(parent, key, JsonValueKind.Number, "an integer");
        return value.TryGetInt32(out int i) ? i : throw new InvalidDataException($"{Path}: {key} is not a 32-bit integer.");
    }

    public bool? OptionalBool(string key)
    {
        if (!Root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new InvalidDataException($"{Path}: {key} is not true or false."),
        };
    }

    // key is the dotted path for messages; the property looked up is its last segment.
    private JsonElement Get(JsonElement parent, string key, JsonValueKind kind, string what)
    {
        string name = key[(key.LastIndexOf('.') + 1)..];
        if (!parent.TryGetProperty(name, out var value))
            throw new InvalidDataException($"{Path}: {key} is missing.");
        if (value.ValueKind != kind)
            throw new InvalidDataException($"{Path}: {key} is {value.ValueKind}, not {what}.");
        return value;
    }
}
