namespace Infinite.Tokenization;

/// <summary>The chat formats <see cref="ChatTemplate"/> renders.</summary>
public enum ChatTemplateFamily
{
    /// <summary>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n (Qwen, many fine-tunes).</summary>
    ChatML,
    /// <summary>&lt;s&gt;[INST] &lt;&lt;SYS&gt;&gt; ... [/INST] answer &lt;/s&gt;.</summary>
    Llama2,
    /// <summary>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\ncontent&lt;|eot_id|&gt;.</summary>
    Llama3,
}
