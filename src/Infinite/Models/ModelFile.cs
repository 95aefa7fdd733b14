using System.Text.Json;
using Infinite.Tokenization;

namespace Infinite.Models;

/// <summary>
/// A model opened from a GGUF file or a Hugging Face folder (config.json + *.safetensors). Weights stay in
/// the read-only memory-mapped files: nothing is copied on open, and pointers stay valid until Dispose.
/// Open checks every tensor the config needs, by name and shape, so a bad file fails here and not mid-run.
/// </summary>
public sealed unsafe class ModelFile : IWeightSource, IDisposable
{
    private readonly MappedFile[] _files;
    private readonly Dictionary<string, TensorInfo> _byName;
    private bool _disposed;

    public string Path { get; }
    public ModelFormat Format { get; }
    public LlamaConfig Config { get; }
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public TokenizerData Tokenizer { get; }

    /// <summary>GGUF metadata (typed values), or the safetensors "__metadata__" strings of every shard.</summary>
    public IReadOnlyDictionary<string, object> Metadata { get; }

    /// <summary>The mapped files, indexed by <see cref="TensorInfo.FileIndex"/>.</summary>
    public IReadOnlyList<string> Files => _files.Select(f => f.Path).ToArray();

    private ModelFile(string path, ModelFormat format, MappedFile[] files, IReadOnlyList<TensorInfo> tensors,
        LlamaConfig config, TokenizerData tokenizer, IReadOnlyDictionary<string, object> metadata)
    {
        Path = path;
        Format = format;
        _files = files;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Config = config;
        Tokenizer = tokenizer;
        Metadata = metadata;
    }

    /// <summary>Opens a .gguf file or a Hugging Face folder; throws <see cref="ModelFormatException"/> for a bad one.</summary>
    public static ModelFile Open(string path, IProgress<LoadProgress>? progress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path)) return OpenFolder(path, progress);
        if (!File.Exists(path)) throw new FileNotFoundException($"model file or folder '{path}' does not exist", path);
        return OpenGguf(path, progress);
    }

    private static ModelFile OpenGguf(string path, IProgress<LoadProgress>? progress)
    {
        var map = new MappedFile(path);
        try
        {
            var gguf = GgufReader.Read(map.Base, map.Length, path);
            var meta = new GgufMetadata(gguf.Metadata, path);
            var tokenizer = GgufTokenizerReader.Read(meta);
            var config = GgufConfigReader.Read(meta, gguf.Tensors, tokenizer.Tokens.Count, t => Decode(map, t));
            var byName = gguf.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
            TensorNames.CheckAgainst(config, byName, path, n => $"'{n}'");
            Report(progress, gguf.Tensors);
            return new ModelFile(path, ModelFormat.Gguf, [map], gguf.Tensors, config, tokenizer, gguf.Metadata);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    private static ModelFile OpenFolder(string folder, IProgress<LoadProgress>? progress)
    {
        string configPath = System.IO.Path.Combine(folder, "config.json");
        if (!File.Exists(configPath))
            throw new ModelFormatException($"{folder}: no config.json (a model folder holds config.json and *.safetensors; a GGUF model is a file)");
        var config = HuggingFaceConfigReader.Read(configPath);
        var (shards, weightMap) = ShardsOf(folder);
        var maps = new List<MappedFile>();
        try
        {
            var tensors = new List<TensorInfo>();
            var byName = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            var hfNames = new Dictionary<string, string>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
            var found = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string shard in shards)
            {
                var map = new MappedFile(shard);
                maps.Add(map);
                var header = SafetensorsHeader.Parse(map.Base, map.Length, shard);
                foreach (var (k, v) in header.Metadata) metadata[k] = v;
                foreach (var e in header.Tensors)
                {
                    string file = System.IO.Path.GetFileName(shard);
                    if (!found.TryAdd(e.Name, file))
                        throw ModelFormatException.In(shard, $"tensor '{e.Name}' is also in {found[e.Name]}");
                    if (TensorNames.FromHuggingFace(e.Name) is not { } name) continue;
                    var info = new TensorInfo(name, e.Type, e.Shape, maps.Count - 1, e.Offset, e.Bytes);
                    tensors.Add(info);
                    byName[name] = info;
                    hfNames[name] = e.Name;
                }
            }
            if (weightMap is not null)
                foreach (var (name, file) in weightMap)
                    if (!found.TryGetValue(name, out var actual) || actual != file)
                        throw ModelFormatException.In(System.IO.Path.Combine(folder, IndexFile),
                            $"weight_map puts tensor '{name}' in {file}, but {(actual is null ? "no shard holds it" : $"it is in {actual}")}");
            TensorNames.CheckAgainst(config, byName, configPath,
                n => hfNames.TryGetValue(n, out var hf) ? $"'{hf}' ({n})" : $"'{TensorNames.ToHuggingFace(n)}' ({n})");
            var tokenizer = HuggingFaceTokenizerFile.Read(folder);
            Report(progress, tensors);
            return new ModelFile(folder, ModelFormat.Safetensors, [.. maps], tensors, config, tokenizer, metadata);
        }
        catch
        {
            foreach (var m in maps) m.Dispose();
            throw;
        }
    }

    private const string IndexFile = "model.safetensors.index.json";

    /// <summary>The shard files, from the index when there is one, and its name -> shard map.</summary>
    private static (List<string> Shards, Dictionary<string, string>? WeightMap) ShardsOf(string folder)
    {
        string indexPath = System.IO.Path.Combine(folder, IndexFile);
        if (!File.Exists(indexPath))
        {
            var files = Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new ModelFormatException($"{folder}: no *.safetensors file");
            return (files, null);
        }
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw ModelFormatException.In(indexPath, "no 'weight_map' object");
            foreach (var p in wm.EnumerateObject())
            {
                string? file = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : null;
                if (string.IsNullOrEmpty(file) || file != System.IO.Path.GetFileName(file))
                    throw ModelFormatException.In(indexPath, $"weight_map entry '{p.Name}' should name a shard file in the folder, got {p.Value.GetRawText()}");
                map[p.Name] = file;
            }
        }
        catch (JsonException e) { throw ModelFormatException.In(indexPath, $"invalid JSON: {e.Message}"); }
        var shards = map.Values.Distinct().Order(StringComparer.Ordinal).Select(f => System.IO.Path.Combine(folder, f)).ToList();
        if (shards.Count == 0) throw ModelFormatException.In(indexPath, "weight_map is empty");
        foreach (string s in shards)
            if (!File.Exists(s)) throw ModelFormatException.In(indexPath, $"shard {System.IO.Path.GetFileName(s)} does not exist");
        return (shards, map);
    }

    private static void Report(IProgress<LoadProgress>? progress, IReadOnlyList<TensorInfo> tensors)
    {
        if (progress is null) return;
        long total = tensors.Sum(t => t.Bytes), done = 0;
        foreach (var t in tensors)
        {
            done += t.Bytes;
            progress.Report(new LoadProgress("map", done, total));
        }
    }

    public TensorInfo GetTensor(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_byName.TryGetValue(name, out var t)) return t;
        var close = _byName.Keys.OrderBy(k => EditDistance(k, name)).ThenBy(k => k, StringComparer.Ordinal).Take(3);
        throw new KeyNotFoundException($"{System.IO.Path.GetFileName(Path)} has no tensor '{name}'; closest names: {string.Join(", ", close)}");
    }

    public nint GetPointer(TensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var own = GetTensor(tensor.Name);
        if (own.FileIndex != tensor.FileIndex || own.Offset != tensor.Offset || own.Bytes != tensor.Bytes)
            throw new ArgumentException($"tensor '{tensor.Name}' does not describe this model's tensor of that name", nameof(tensor));
        return (nint)(_files[own.FileIndex].Base + own.Offset);
    }

    /// <summary>The tensor's stored bytes; tensors over 2 GB need <see cref="GetPointer"/>.</summary>
    public ReadOnlySpan<byte> GetBytes(TensorInfo tensor)
    {
        nint p = GetPointer(tensor);
        if (tensor.Bytes > int.MaxValue)
            throw new InvalidOperationException($"tensor '{tensor.Name}' is {tensor.Bytes} bytes, more than a span holds; use GetPointer");
        return new ReadOnlySpan<byte>((void*)p, (int)tensor.Bytes);
    }

    public float[] ReadFloats(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var t = GetTensor(name);
        return Decode(_files[t.FileIndex], t);
    }

    private static float[] Decode(MappedFile file, TensorInfo t)
    {
        if (t.ElementCount > Array.MaxLength)
            throw new InvalidOperationException($"tensor '{t.Name}' has {t.ElementCount} elements, more than an array holds");
        var values = new float[t.ElementCount];
        const int chunk = 1 << 20;   // elements per step, a multiple of the Q8_0 block, so spans stay under 2 GB
        for (long i = 0; i < values.LongLength; i += chunk)
        {
            int n = (int)Math.Min(chunk, values.LongLength - i);
            long byteOffset = t.Offset + TensorEncoding.ByteCount(t.Type, i);
            var source = new ReadOnlySpan<byte>(file.Base + byteOffset, (int)TensorEncoding.ByteCount(t.Type, n));
            TensorEncoding.Decode(source, t.Type, values.AsSpan((int)i, n));
        }
        return values;
    }

    private static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var f in _files) f.Dispose();
    }
}
