namespace Infinite.Server.Api;

/// <summary>A request the server refuses, carried to the error writer as OpenAI's error object and an HTTP status.</summary>
internal sealed class ApiException : Exception
{
    public ApiException(int status, string message, string type = ApiErrorTypes.InvalidRequest, string? param = null,
        string? code = null)
        : base(message)
    {
        Status = status;
        Type = type;
        Param = param;
        Code = code;
    }

    public int Status { get; }
    public string Type { get; }
    public string? Param { get; }
    public string? Code { get; }

    public static ApiException BadRequest(string message, string? param = null, string? code = null)
        => new(400, message, ApiErrorTypes.InvalidRequest, param, code);

    public static ApiException InvalidType(string param, string expected, string got)
        => BadRequest($"Invalid type for '{param}': expected {expected}, but got {got} instead.", param, "invalid_type");

    /// <summary>The engine's validation messages are written for people (they name the field and the numbers);
    /// the " (Parameter 'x')" suffix ArgumentException adds means nothing to an HTTP client.</summary>
    public static ApiException FromArgument(ArgumentException e, string? param = null)
    {
        string message = e.ParamName is null
            ? e.Message
            : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
        return BadRequest(message, param, "invalid_value");
    }

    public static ApiException Unsupported(string param, string what)
        => BadRequest($"'{param}' {what} is not supported by this server.", param, "unsupported_parameter");
}

/// <summary>The "type" strings of error objects.</summary>
internal static class ApiErrorTypes
{
    public const string InvalidRequest = "invalid_request_error";
    public const string RateLimit = "rate_limit_error";
    public const string Unavailable = "service_unavailable_error";
    public const string Server = "server_error";
}
