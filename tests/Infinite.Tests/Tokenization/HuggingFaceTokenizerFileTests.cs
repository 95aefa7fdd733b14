using System.Text.Json.Nodes;
using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

public class HuggingFaceTokenizerFileTests
{
    [Fact]
    public void Reads_a_llama3_style_byte_level_folder()
    {
        using var folder = new HuggingFaceFolder();
        var (tokenizer, config, n) = HuggingFaceFolder.Llama3();
        folder.Write("tokenizer.json", tokenizer);
        folder.Write("generation_config.json", new JsonObject { ["eos_token_id"] = new JsonArray(n + 1, n) });
        config["pad_token"] = "<pad-not-in-vocab>";
        folder.Write("tokenizer_config.json", config);

        var data = HuggingFaceTokenizerFile.Read(folder.Path);
        Assert.Equal(TokenizerKind.ByteLevelBpe, data.Kind);
        Assert.Equal("regex:" + PreTokenizer.Llama3Pattern, data.Pre);
        Assert.True(data.IgnoreMerges);
        Assert.Equal(n, data.BosId);
        Assert.Equal(n + 1, data.EosId);
        Assert.True(data.AddBos); // from the TemplateProcessing post-processor
        Assert.False(data.AddEos);
        Assert.Equal([n + 1, n], data.ExtraEosIds!);
        Assert.Null(data.PadId);
        Assert.Equal(TokenType.Control, data.Types![n]);
        Assert.Equal(TokenType.UserDefined, data.Types![n + 2]);
        Assert.Equal(TokenType.Normal, data.Types![0]);
        Assert.Contains("<|start_header_id|>", data.ChatTemplate, StringComparison.Ordinal);
        Assert.Equal(TestVocabularies.HelloWorldMerges, data.Merges!);

        var tok = Tokenizer.Create(data);
        int hello = TestVocabularies.IdOf(data, "hello"), world = TestVocabularies.IdOf(data, "\u0120world");
        Assert.Equal([n, hello, world, n + 1, n + 2], tok.Encode("hello world<|eot_id|><tool>"));
        Assert.Equal("hello world<tool>", tok.Decode(tok.Encode("hello world<|eot_id|><tool>")));
    }

    [Fact]
    public void Reads_a_llama2_style_byte_fallback_folder_as_sentencepiece()
    {
        using var folder = new HuggingFaceFolder();
        var (tokenizer, config) = HuggingFaceFolder.Llama2();
        folder.Write("tokenizer.json", tokenizer);
        folder.Write("tokenizer_config.json", config);

        var data = HuggingFaceTokenizerFile.Read(folder.Path);
        Assert.Equal(TokenizerKind.SentencePiece, data.Kind);
        Assert.Equal(0, data.UnknownId);
        Assert.Equal(TokenType.Byte, data.Types![3 + 0x41]);
        Assert.Equal(["\u2581 a", "a b"], data.Merges!);
        var tok = Tokenizer.Create(data);
        // "▁ab▁ab": rank 0 "▁ a" applies first at both places, after which "a b" no longer has an 'a' to use.
        const int spaceA = 262, b = 261;
        Assert.Equal([1, spaceA, b, spaceA, b], tok.Encode("ab ab"));
        Assert.Equal([1, 262, 3 + 0xE4, 3 + 0xB8, 3 + 0xAD], tok.Encode("a中"));
        Assert.Equal("ab ab", tok.Decode(tok.Encode("ab ab")));
        Assert.Equal(ChatTemplateFamily.Llama2, ChatTemplate.For(data).Family);
    }

    [Fact]
    public void Missing_files_are_named()
    {
        using var folder = new HuggingFaceFolder();
        Assert.Throws<DirectoryNotFoundException>(() => HuggingFaceTokenizerFile.Read(System.IO.Path.Combine(folder.Path, "nope")));
        var e = Assert.Throws<FileNotFoundException>(() => HuggingFaceTokenizerFile.Read(folder.Path));
        Assert.Contains("tokenizer.json", e.Message, StringComparison.Ordinal);
        folder.Write("tokenizer.json", HuggingFaceFolder.Llama3().Tokenizer);
        e = Assert.Throws<FileNotFoundException>(() => HuggingFaceTokenizerFile.Read(folder.Path));
        Assert.Contains("tokenizer_config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_json_names_the_file()
    {
        using var folder = new HuggingFaceFolder();
        folder.WriteText("tokenizer.json", "{ \"model\": ");
        folder.Write("tokenizer_config.json", new JsonObject());
        var e = Assert.Throws<InvalidDataException>(() => HuggingFaceTokenizerFile.Read(folder.Path));
        Assert.Contains("tokenizer.json", e.Message, StringComparison.Ordinal);
        folder.WriteText("tokenizer.json", "[1, 2]");
        Assert.Contains("not a JSON object", Assert.Throws<InvalidDataException>(() => HuggingFaceTokenizerFile.Read(folder.Path)).Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> TokenizerBreakages() => new()
    {
        { "model.type", "WordPiece" },
        { "model.vocab", "missing" },
        { "model.vocab", "bad-id" },
        { "model.merges[0]", "merge-number" },
        { "model.merges[1]", "merge-no-space" },
        { "model.merges[2]", "merge-array-space" },
        { "added_tokens[0]", "added-conflict" },
        { "added_tokens[1].content", "added-no-content" },
        { "pre_tokenizer.pretokenizers[0].type", "digits" },
        { "pre_tokenizer", "no-pre" },
        { "model.unk_token", "unk-missing" },
        { "normalizer.type 'Lowercase'", "lowercase" },
    };

    [Theory]
    [MemberData(nameof(TokenizerBreakages))]
    public void Malformed_tokenizer_json_names_the_key(string key, string breakage)
    {
        var (tokenizer, config, _) = HuggingFaceFolder.Llama3();
        var model = tokenizer["model"]!.AsObject();
        var added = tokenizer["added_tokens"]!.AsArray();
        switch (breakage)
        {
            case "WordPiece": model["type"] = "WordPiece"; break;
            case "missing": model.Remove("vocab"); break;
            case "bad-id": model["vocab"]!["h"] = "seven"; break;
            case "merge-number": model["merges"]![0] = 5; break;
            case "merge-no-space": model["merges"]![1] = "ol"; break;
            case "merge-array-space": model["merges"]![2] = new JsonArray("a b", "c"); break;
            case "added-conflict": added[0]!["id"] = 0; break;
            case "added-no-content": added[1]!.AsObject().Remove("content"); break;
            case "digits": tokenizer["pre_tokenizer"]!["pretokenizers"]![0] = new JsonObject { ["type"] = "Digits" }; break;
            case "no-pre": tokenizer.Remove("pre_tokenizer"); break;
            case "unk-missing": model["unk_token"] = "<nope>"; break;
            case "lowercase": tokenizer["normalizer"] = new JsonObject { ["type"] = "Lowercase" }; break;
        }
        using var folder = new HuggingFaceFolder();
        folder.Write("tokenizer.json", tokenizer);
        folder.Write("tokenizer_config.json", config);
        var e = Assert.Throws<InvalidDataException>(() => HuggingFaceTokenizerFile.Read(folder.Path));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.json", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bos_token", "{\"bos_token\": \"<nope>\"}")]
    [InlineData("eos_token", "{\"eos_token\": 5}")]
    [InlineData("eos_token.content", "{\"eos_token\": {\"lstrip\": true}}")]
    [InlineData("add_bos_token", "{\"add_bos_token\": \"yes\"}")]
    [InlineData("chat_template", "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}]}")]
    [InlineData("chat_template[0].template", "{\"chat_template\": [{\"name\": \"default\"}]}")]
    public void Malformed_tokenizer_config_names_the_key(string key, string configJson)
    {
        using var folder = new HuggingFaceFolder();
        folder.Write("tokenizer.json", HuggingFaceFolder.Llama3().Tokenizer);
        folder.WriteText("tokenizer_config.json", configJson);
        var e = Assert.Throws<InvalidDataException>(() => HuggingFaceTokenizerFile.Read(folder.Path));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer_config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plain_byte_level_pre_tokenizer_means_gpt2()
    {
        var (tokenizer, config, _) = HuggingFaceFolder.Llama3();
        tokenizer["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false };
        config["chat_template"] = "{% for m in messages %}<|im_start|>{% endfor %}";
        using var folder = new HuggingFaceFolder();
        folder.Write("tokenizer.json", tokenizer);
        folder.Write("tokenizer_config.json", config);
        var data = HuggingFaceTokenizerFile.Read(folder.Path);
        Assert.Equal("gpt2", data.Pre);
        Assert.Equal(ChatTemplateFamily.ChatML, ChatTemplate.For(data).Family);
    }

    [Fact]
    public void Byte_fallback_files_outside_the_llama2_layout_are_refused()
    {
        var (tokenizer, config) = HuggingFaceFolder.Llama2();
        tokenizer["normalizer"] = new JsonObject { ["type"] = "NFKC" };
        using var folder = new HuggingFaceFolder();
        folder.Write("tokenizer.json", tokenizer);
        folder.Write("tokenizer_config.json", config);
        Assert.Contains("normalizer 'NFKC'", Assert.Throws<InvalidDataException>(() => HuggingFaceTokenizerFile.Read(folder.Path)).Message, StringComparison.Ordinal);
        tokenizer["normalizer"] = null;
        tokenizer["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel" };
        folder.Write("tokenizer.json", tokenizer);
        Assert.Contains("pre_tokenizer.type 'ByteLevel'", Assert.Throws<InvalidDataException>(() => HuggingFaceTokenizerFile.Read(folder.Path)).Message, StringComparison.Ordinal);
    }
}
