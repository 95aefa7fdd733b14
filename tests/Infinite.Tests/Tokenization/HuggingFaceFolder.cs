using System.Text.Json;
using System.Text.Json.Nodes;
using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

/// <summary>A temporary model folder with tokenizer.json / tokenizer_config.json fixtures that tests can break.</summary>
internal sealed class HuggingFaceFolder : IDisposable
{
    public HuggingFaceFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "infinite-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Write(string name, JsonNode? node) =>
        File.WriteAllText(System.IO.Path.Combine(Path, name), node?.ToJsonString() ?? "null");

    public void WriteText(string name, string text) => File.WriteAllText(System.IO.Path.Combine(Path, name), text);

    public void Dispose() => Directory.Delete(Path, recursive: true);

    /// <summary>Llama 3 layout: byte-level vocab of <see cref="TestVocabularies.ByteLevel"/> plus three added tokens.</summary>
    public static (JsonObject Tokenizer, JsonObject Config, int FirstAdded) Llama3()
    {
        var baseData = TestVocabularies.ByteLevel(TestVocabularies.HelloWorldMerges);
        int n = baseData.Tokens.Count;
        var vocab = new JsonObject();
        for (int id = 0; id < n; id++) vocab[baseData.Tokens[id]] = id;
        var tokenizer = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = n, ["content"] = "<|begin_of_text|>", ["special"] = true },
                new JsonObject { ["id"] = n + 1, ["content"] = "<|eot_id|>", ["special"] = true },
                new JsonObject { ["id"] = n + 2, ["content"] = "<tool>", ["special"] = false }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject
                    {
                        ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = PreTokenizer.Llama3Pattern },
                        ["behavior"] = "Isolated", ["invert"] = false,
                    },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["processors"] = new JsonArray(
                    new JsonObject { ["type"] = "ByteLevel" },
                    new JsonObject
                    {
                        ["type"] = "TemplateProcessing",
                        ["single"] = new JsonArray(
                            new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["type_id"] = 0 } },
                            new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                    }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["ignore_merges"] = true,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(TestVocabularies.HelloWorldMerges.Select(m => (JsonNode)JsonValue.Create(m)!).ToArray()),
            },
        };
        var config = new JsonObject
        {
            ["bos_token"] = "<|begin_of_text|>",
            ["eos_token"] = new JsonObject { ["content"] = "<|eot_id|>", ["lstrip"] = false },
            ["chat_template"] = new JsonArray(
                new JsonObject { ["name"] = "tool_use", ["template"] = "tools" },
                new JsonObject { ["name"] = "default", ["template"] = "{{ '<|start_header_id|>' + message['role'] }}" }),
        };
        return (tokenizer, config, n);
    }

    /// <summary>Llama 2 layout: BPE with byte_fallback, Prepend/Replace normalizer, merges "▁ a" then "a b".</summary>
    public static (JsonObject Tokenizer, JsonObject Config) Llama2()
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 3 + b;
        string[] pieces = ["\u2581", "a", "b", "\u2581a", "ab"];
        for (int i = 0; i < pieces.Length; i++) vocab[pieces[i]] = 259 + i;
        var tokenizer = new JsonObject
        {
            ["added_tokens"] = new JsonArray(
                new JsonObject { ["id"] = 0, ["content"] = "<unk>", ["special"] = true },
                new JsonObject { ["id"] = 1, ["content"] = "<s>", ["special"] = true },
                new JsonObject { ["id"] = 2, ["content"] = "</s>", ["special"] = true }),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "\u2581" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "\u2581" }),
            },
            ["pre_tokenizer"] = null,
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["byte_fallback"] = true, ["unk_token"] = "<unk>",
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(new JsonArray("\u2581", "a"), new JsonArray("a", "b")),
            },
        };
        var config = new JsonObject
        {
            ["add_bos_token"] = true, ["add_eos_token"] = false, ["bos_token"] = "<s>", ["eos_token"] = "</s>",
            ["chat_template"] = "{{ bos_token + '[INST] ' + content + ' [/INST]' }}",
        };
        return (tokenizer, config);
    }
}
