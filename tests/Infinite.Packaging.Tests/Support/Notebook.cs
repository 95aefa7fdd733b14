using System.Text.Json;

namespace Infinite.Packaging.Tests.Support;

/// <summary>Reads a Jupyter notebook (.ipynb, nbformat 4) as JSON.</summary>
internal static class Notebook
{
    public static JsonDocument Load(string path) => JsonDocument.Parse(File.ReadAllText(path));

    /// <summary>The source of every code cell, in order (nbformat stores a cell's source as a list of lines).</summary>
    public static IReadOnlyList<string> CodeCells(string path)
    {
        using JsonDocument notebook = Load(path);
        return notebook.RootElement.GetProperty("cells").EnumerateArray()
            .Where(cell => cell.GetProperty("cell_type").GetString() == "code")
            .Select(cell => SourceOf(cell))
            .ToArray();
    }

    public static string SourceOf(JsonElement cell)
    {
        JsonElement source = cell.GetProperty("source");
        return source.ValueKind == JsonValueKind.Array
            ? string.Concat(source.EnumerateArray().Select(line => line.GetString()))
            : source.GetString() ?? "";
    }
}
