using System.ClientModel;
using System.Text;
using OpenAI;
using OpenAI.Chat;

namespace Infinite.Server.Tests;

/// <summary>The official OpenAI .NET client against the server: if it parses our answers, real clients will.</summary>
public sealed class OpenAiClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    private ChatClient Chat(string? model = null)
        => new OpenAIClient(new ApiKeyCredential("x"), new OpenAIClientOptions { Endpoint = new Uri(Server.BaseUrl + "/v1") })
            .GetChatClient(model ?? Server.ModelId);

    private static readonly ChatMessage[] Conversation =
    [
        new SystemChatMessage("You are terse."),
        new UserChatMessage("Tell me about the mill by the river."),
    ];

    [Fact]
    public async Task Chat_returns_an_assistant_message_with_usage()
    {
        ChatCompletion completion = await Chat().CompleteChatAsync(Conversation,
            new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0f });
        Assert.StartsWith("chatcmpl-", completion.Id);
        Assert.Equal(Server.ModelId, completion.Model);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Contains(completion.FinishReason, new[] { ChatFinishReason.Stop, ChatFinishReason.Length });
        Assert.InRange(completion.Usage.OutputTokenCount, 1, 12);
        int prompt = Server.Engine.ChatTemplate.Encode(Server.Engine.Tokenizer,
            [new("system", "You are terse."), new("user", "Tell me about the mill by the river.")]).Length;
        Assert.Equal(prompt, completion.Usage.InputTokenCount);
        Assert.Equal(prompt + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task Streaming_chat_gives_the_same_text_as_the_whole_answer_and_ends_with_usage()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 16, Temperature = 0f };
        ChatCompletion whole = await Chat().CompleteChatAsync(Conversation, options);

        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        bool sawRole = false;
        await foreach (StreamingChatCompletionUpdate update in Chat().CompleteChatStreamingAsync(Conversation, options))
        {
            sawRole |= update.Role == ChatMessageRole.Assistant;
            foreach (ChatMessageContentPart part in update.ContentUpdate)
                text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.True(sawRole);
        Assert.Equal(whole.Content.Count == 0 ? "" : whole.Content[0].Text, text.ToString());
        Assert.Equal(whole.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);
    }

    [Fact]
    public async Task Max_output_tokens_end_the_answer_with_finish_reason_length()
    {
        // Greedy on this prompt does not meet EOS in its first 3 tokens (checked by the streaming test's length).
        ChatCompletion completion = await Chat().CompleteChatAsync([new UserChatMessage("Count the stones and the doors.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 3, Temperature = 0f });
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(3, completion.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_answer()
    {
#pragma warning disable OPENAI001 // Seed is marked experimental in the client.
        ChatCompletionOptions Options(long seed) => new() { MaxOutputTokenCount = 24, Temperature = 1f, Seed = seed };
#pragma warning restore OPENAI001
        async Task<string> Run(long seed)
        {
            ChatCompletion c = await Chat().CompleteChatAsync(Conversation, Options(seed));
            return $"{c.Usage.OutputTokenCount}:{(c.Content.Count == 0 ? "" : c.Content[0].Text)}";
        }
        string first = await Run(42);
        Assert.Equal(first, await Run(42));
        // Different seeds draw differently at temperature 1 (five tries: one may collide by chance).
        var others = new HashSet<string>();
        for (int seed = 1; seed <= 5; seed++)
            others.Add(await Run(seed));
        Assert.True(others.Count > 1 || !others.Contains(first), "different seeds gave the same text every time");
    }

    [Fact]
    public async Task An_unknown_model_surfaces_as_a_404_client_exception()
    {
        var e = await Assert.ThrowsAsync<ClientResultException>(
            () => Chat("gpt-4o").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, e.Status);
        Assert.Contains("gpt-4o", e.Message);
    }

    [Fact]
    public async Task A_bad_parameter_surfaces_as_a_400_client_exception()
    {
        var e = await Assert.ThrowsAsync<ClientResultException>(() => Chat().CompleteChatAsync(
            [new UserChatMessage("hi")], new ChatCompletionOptions { Temperature = 5f }));
        Assert.Equal(400, e.Status);
        Assert.Contains("temperature", e.Message);
    }

    [Fact]
    public async Task Models_lists_the_served_model()
    {
        var models = new OpenAIClient(new ApiKeyCredential("x"),
            new OpenAIClientOptions { Endpoint = new Uri(Server.BaseUrl + "/v1") }).GetOpenAIModelClient();
        var list = await models.GetModelsAsync();
        Assert.Equal([Server.ModelId], list.Value.Select(m => m.Id));
        var one = await models.GetModelAsync(Server.ModelId);
        Assert.Equal("infinite", one.Value.OwnedBy);
    }
}
