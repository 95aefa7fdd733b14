namespace Infinite.Runtime;

/// <summary>One transformer block's weights in float64, each matrix row-major <c>[out][in]</c>.</summary>
internal sealed record ReferenceLayer(
    double[] AttnNorm,
    double[] Q,
    double[] K,
    double[] V,
    double[] O,
    double[] FfnNorm,
    double[] Gate,
    double[] Up,
    double[] Down);
