using System.Text;

namespace Infinite.Tokenization;

/// <summary>
/// Renders a conversation the way the model's Jinja chat template would, for the three families recognised
/// from the template text (no Jinja engine: the family's output is reproduced exactly). Encode the result with
/// parseSpecial = true, and addBos = !<see cref="WritesBos"/> so BOS is not doubled.
/// </summary>
public sealed class ChatTemplate
{
    private readonly string bos;
    private readonly string eos;

    public ChatTemplate(ChatTemplateFamily family, string bosText, string eosText)
    {
        ArgumentNullException.ThrowIfNull(bosText);
        ArgumentNullException.ThrowIfNull(eosText);
        if (!Enum.IsDefined(family)) throw new ArgumentException($"Unknown chat template family {(int)family}.", nameof(family));
        Family = family;
        bos = bosText;
        eos = eosText;
    }

    public ChatTemplateFamily Family { get; }

    /// <summary>True when the rendered text already starts with the BOS token's text.</summary>
    public bool WritesBos => Family is ChatTemplateFamily.Llama3 or ChatTemplateFamily.Llama2;

    /// <summary>
    /// The family from the template text; without a recognisable template, from the special tokens the
    /// vocabulary has; ChatML otherwise.
    /// </summary>
    public static ChatTemplate For(TokenizerData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        string? TextOf(int id) => id >= 0 && id < data.Tokens.Count ? data.Tokens[id] : null;
        var family = FromText(data.ChatTemplate) ?? FromTokens(data.Tokens) ?? ChatTemplateFamily.ChatML;
        string bos = TextOf(data.BosId) ?? (family == ChatTemplateFamily.Llama3 ? "<|begin_of_text|>" : "<s>");
        string eos = TextOf(data.EosId) ?? "</s>";
        return new ChatTemplate(family, bos, eos);
    }

    private static ChatTemplateFamily? FromText(string? template) => template switch
    {
        null => null,
        _ when template.Contains("<|start_header_id|>", StringComparison.Ordinal) => ChatTemplateFamily.Llama3,
        _ when template.Contains("[INST]", StringComparison.Ordinal) => ChatTemplateFamily.Llama2,
        _ when template.Contains("<|im_start|>", StringComparison.Ordinal) => ChatTemplateFamily.ChatML,
        _ => null,
    };

    private static ChatTemplateFamily? FromTokens(IReadOnlyList<string> tokens)
    {
        var set = new HashSet<string>(tokens, StringComparer.Ordinal);
        if (set.Contains("<|start_header_id|>")) return ChatTemplateFamily.Llama3;
        if (set.Contains("[INST]")) return ChatTemplateFamily.Llama2;
        if (set.Contains("<|im_start|>")) return ChatTemplateFamily.ChatML;
        return null;
    }

    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        Validate(messages);
        return Family switch
        {
            ChatTemplateFamily.Llama3 => RenderLlama3(messages, addGenerationPrompt),
            ChatTemplateFamily.Llama2 => RenderLlama2(messages),
            _ => RenderChatML(messages, addGenerationPrompt),
        };
    }

    /// <summary>Renders and encodes, adding BOS only when the template did not write it.</summary>
    public int[] Encode(ITokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Encode(Render(messages, addGenerationPrompt), addBos: !WritesBos, parseSpecial: true);
    }

    private string RenderLlama3(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var sb = new StringBuilder(bos);
        foreach (var m in messages)
            sb.Append("<|start_header_id|>").Append(m.Role).Append("<|end_header_id|>\n\n").Append(m.Content.Trim()).Append("<|eot_id|>");
        if (addGenerationPrompt) sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
        return sb.ToString();
    }

    // The Llama 2 template always ends a user turn with " [/INST]", which is already the generation prompt.
    private string RenderLlama2(IReadOnlyList<ChatMessage> messages)
    {
        int first = messages[0].Role == "system" ? 1 : 0;
        if (first == messages.Count)
            throw new ArgumentException("The Llama 2 chat format needs a user message after the system message.", nameof(messages));
        var sb = new StringBuilder();
        for (int i = first; i < messages.Count; i++)
        {
            var m = messages[i];
            bool userTurn = (i - first) % 2 == 0;
            if ((m.Role == "user") != userTurn)
                throw new ArgumentException(
                    $"messages[{i}] has role '{m.Role}': the Llama 2 chat format needs user/assistant turns alternating, starting with user.",
                    nameof(messages));
            string content = i == first && first == 1
                ? "<<SYS>>\n" + messages[0].Content + "\n<</SYS>>\n\n" + m.Content
                : m.Content;
            if (userTurn) sb.Append(bos).Append("[INST] ").Append(content.Trim()).Append(" [/INST]");
            else sb.Append(' ').Append(content.Trim()).Append(' ').Append(eos);
        }
        return sb.ToString();
    }

    private static string RenderChatML(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        foreach (var m in messages) sb.Append("<|im_start|>").Append(m.Role).Append('\n').Append(m.Content).Append("<|im_end|>\n");
        if (addGenerationPrompt) sb.Append("<|im_start|>assistant\n");
        return sb.ToString();
    }

    private static void Validate(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ArgumentException("A chat needs at least one message.", nameof(messages));
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i] ?? throw new ArgumentException($"messages[{i}] is null.", nameof(messages));
            if (m.Role is null || m.Content is null)
                throw new ArgumentException($"messages[{i}] has a null {(m.Role is null ? "role" : "content")}.", nameof(messages));
            if (m.Role is not ("system" or "user" or "assistant"))
                throw new ArgumentException($"messages[{i}] has role '{m.Role}'; expected system, user or assistant.", nameof(messages));
            if (m.Role == "system" && i != 0)
                throw new ArgumentException($"messages[{i}] is a system message; only the first message may be one.", nameof(messages));
        }
    }
}
