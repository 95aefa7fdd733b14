using Infinite.Tokenization;

namespace Infinite.Tests.Tokenization;

public class ChatTemplateTests
{
    private static readonly ChatMessage[] Conversation =
    [
        new("system", "Be brief."),
        new("user", "  Hi there \n"),
        new("assistant", "Hello!"),
        new("user", "Bye"),
    ];

    private static TokenizerData WithTemplate(string? template, params string[] tokens) =>
        new(TokenizerKind.ByteLevelBpe, tokens.Length == 0 ? ["x"] : tokens, null, null, [], -1, -1, null, null, false, false, null, template);

    [Fact]
    public void Llama3_renders_headers_trimmed_content_and_the_generation_prompt()
    {
        var template = ChatTemplate.For(WithTemplate("{{ '<|start_header_id|>' }}"));
        Assert.Equal(ChatTemplateFamily.Llama3, template.Family);
        Assert.True(template.WritesBos);
        Assert.Equal(
            "<|begin_of_text|>"
            + "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n",
            template.Render(Conversation));
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|>",
            template.Render([new("user", "q")], addGenerationPrompt: false));
    }

    [Fact]
    public void Llama2_merges_the_system_prompt_into_the_first_user_turn()
    {
        var template = ChatTemplate.For(WithTemplate("{{ '[INST] ' }}", "<unk>", "<s>", "</s>") with { BosId = 1, EosId = 2 });
        Assert.Equal(ChatTemplateFamily.Llama2, template.Family);
        Assert.True(template.WritesBos);
        Assert.Equal(
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n  Hi there [/INST] Hello! </s><s>[INST] Bye [/INST]",
            template.Render(Conversation));
        Assert.Equal("<s>[INST] q [/INST]", template.Render([new("user", " q ")]));
    }

    [Fact]
    public void ChatML_renders_im_start_blocks()
    {
        var template = ChatTemplate.For(WithTemplate("{% for m in messages %}<|im_start|>{% endfor %}"));
        Assert.Equal(ChatTemplateFamily.ChatML, template.Family);
        Assert.False(template.WritesBos);
        Assert.Equal(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n  Hi there \n<|im_end|>\n"
            + "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
            template.Render(Conversation));
        Assert.Equal("<|im_start|>user\nq<|im_end|>\n", template.Render([new("user", "q")], addGenerationPrompt: false));
    }

    [Fact]
    public void Family_falls_back_to_special_tokens_then_chatml()
    {
        Assert.Equal(ChatTemplateFamily.Llama3, ChatTemplate.For(WithTemplate(null, "<|start_header_id|>")).Family);
        Assert.Equal(ChatTemplateFamily.Llama2, ChatTemplate.For(WithTemplate("{{ unknown }}", "[INST]")).Family);
        Assert.Equal(ChatTemplateFamily.ChatML, ChatTemplate.For(WithTemplate(null, "<|im_start|>")).Family);
        Assert.Equal(ChatTemplateFamily.ChatML, ChatTemplate.For(WithTemplate(null, "plain")).Family);
    }

    [Fact]
    public void Roles_are_validated_with_their_position()
    {
        var llama3 = new ChatTemplate(ChatTemplateFamily.Llama3, "<|begin_of_text|>", "<|eot_id|>");
        var llama2 = new ChatTemplate(ChatTemplateFamily.Llama2, "<s>", "</s>");
        Assert.Contains("messages[1]", Assert.Throws<ArgumentException>(() => llama3.Render([new("user", "a"), new("tool", "b")])).Message, StringComparison.Ordinal);
        Assert.Contains("only the first", Assert.Throws<ArgumentException>(() => llama3.Render([new("user", "a"), new("system", "b")])).Message, StringComparison.Ordinal);
        Assert.Contains("at least one", Assert.Throws<ArgumentException>(() => llama3.Render([])).Message, StringComparison.Ordinal);
        Assert.Contains("alternating", Assert.Throws<ArgumentException>(() => llama2.Render([new("user", "a"), new("user", "b")])).Message, StringComparison.Ordinal);
        Assert.Contains("messages[1]", Assert.Throws<ArgumentException>(() => llama2.Render([new("system", "s"), new("assistant", "b")])).Message, StringComparison.Ordinal);
        Assert.Contains("user message", Assert.Throws<ArgumentException>(() => llama2.Render([new("system", "s")])).Message, StringComparison.Ordinal);
        Assert.Contains("content", Assert.Throws<ArgumentException>(() => llama2.Render([new("user", null!)])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Encoding_a_rendered_chat_writes_bos_once_and_parses_special_tokens()
    {
        var data = TestVocabularies.ByteLevel(TestVocabularies.HelloWorldMerges, "llama3",
            "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>");
        var tok = Tokenizer.Create(data);
        var template = ChatTemplate.For(data);
        Assert.Equal(ChatTemplateFamily.Llama3, template.Family);
        var ids = template.Encode(tok, [new("user", "hello")]);
        int bos = data.BosId, eot = data.EosId;
        int start = TestVocabularies.IdOf(data, "<|start_header_id|>"), end = TestVocabularies.IdOf(data, "<|end_header_id|>");
        int[] expected = [bos, start, 'u', 's', 'e', 'r', end, 0x0A, 0x0A, TestVocabularies.IdOf(data, "hello"), eot,
            start, 'a', 's', 's', 'i', 's', 't', 'a', 'n', 't', end, 0x0A, 0x0A];
        // Ids below 256 are single bytes; "\n\n" has no merge, so it is two newline byte tokens.
        Assert.Equal(expected, ids);
    }
}
