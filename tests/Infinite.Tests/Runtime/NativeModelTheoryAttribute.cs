namespace Infinite.Tests.Runtime;

/// <summary>The theory form of <see cref="NativeModelFactAttribute"/>.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NativeModelTheoryAttribute : TheoryAttribute
{
    public NativeModelTheoryAttribute()
    {
        Skip = NativeModelFactAttribute.MissingReason.Value;
    }
}
