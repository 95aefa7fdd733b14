using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Infinite.Hosting;

/// <summary>Registers an Infinite engine with a .NET host.</summary>
public static class InfiniteServiceCollectionExtensions
{
    /// <summary>
    /// Loads a model when the host starts and shares it through <see cref="InfiniteEngineProvider"/>:
    /// <code>
    /// builder.Services.AddInfinite(o => { o.ModelPath = "llama.gguf"; o.Options = new InfiniteOptions { KvMemoryBytes = 4L &lt;&lt; 30 }; });
    /// InfiniteEngine engine = await app.Services.GetRequiredService&lt;InfiniteEngineProvider&gt;().GetEngineAsync();
    /// </code>
    /// A null <see cref="InfiniteHostingOptions.ModelPath"/> loads the built-in demo model. One engine per container.
    /// </summary>
    public static IServiceCollection AddInfinite(this IServiceCollection services, Action<InfiniteHostingOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        if (services.Any(d => d.ServiceType == typeof(InfiniteEngineProvider)))
        {
            throw new InvalidOperationException("AddInfinite was already called on this service collection: one host serves one engine.");
        }
        services.AddOptions<InfiniteHostingOptions>()
            .Configure(configure)
            .Validate(o => o.Options is not null, "InfiniteHostingOptions.Options must not be null")
            .Validate(o => o.ModelPath is null || o.ModelPath.Length > 0, "InfiniteHostingOptions.ModelPath must be null (demo model) or a path");
        services.AddSingleton<InfiniteEngineProvider>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Microsoft.Extensions.Hosting.IHostedService, InfiniteEngineHostedService>());
        return services;
    }
}
