namespace Infinite.Simulation;

/// <summary>The policies by command-line name: borrowing (Infinite-LLM), static (vLLM-M), single (vLLM-S), ideal (the
/// upper bound of any placement under the cost model), ideal-instances (the upper bound of any placement over the
/// cluster's independent instances, each with its own weight copy).</summary>
public static class SimulationPolicies
{
    public static IReadOnlyList<string> Names { get; } = ["borrowing", "static", "single", "ideal", "ideal-instances"];

    /// <summary>"borrowing", "static", "single", "ideal", "ideal-instances", or "all" (every one, static first so ratios
    /// read against it), also comma-separated.</summary>
    /// <exception cref="ArgumentException">An unknown name.</exception>
    public static IReadOnlyList<SimulationPolicy> Parse(string names, SimulationOptions options, double lendingCap)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(options);
        var list = new List<SimulationPolicy>();
        foreach (string part in names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string key = part.ToLowerInvariant();
            IEnumerable<string> expanded = key == "all" ? ["static", "borrowing", "single", "ideal", "ideal-instances"] : [key];
            foreach (string name in expanded)
            {
                if (list.Any(p => p.Name == name))
                    continue;
                list.Add(Create(name, options, lendingCap));
            }
        }
        if (list.Count == 0)
            throw new ArgumentException($"No policy given: expected {string.Join(", ", Names)} or all.");
        return list;
    }

    /// <summary>One policy by name.</summary>
    public static SimulationPolicy Create(string name, SimulationOptions options, double lendingCap)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (double.IsNaN(lendingCap) || lendingCap < 0 || lendingCap > 1)
            throw new ArgumentException($"The lending cap is a fraction in [0, 1], got {lendingCap}.");
        int moveTokens = options.MigrationTokensPerStep * options.PlanEverySteps;
        return name switch
        {
            "borrowing" => new BorrowingClusterPolicy
            {
                LendingCap = lendingCap,
                MoveTokensPerPlan = moveTokens,
                LendAllWhenIdle = options.LendAllWhenIdle,
                SpreadBorrowing = options.SpreadBorrowing,
                BorrowOnlyFromCreditors = options.BorrowOnlyFromCreditors,
            },
            "static" => new StaticClusterPolicy { LendingCap = lendingCap, MoveTokensPerPlan = moveTokens },
            "single" => new SinglePolicy(),
            "ideal" => new SinglePolicy { Mode = PooledMode.Ideal },
            "ideal-instances" => new SinglePolicy { Mode = PooledMode.IdealInstances },
            _ => throw new ArgumentException($"Unknown policy '{name}': expected {string.Join(", ", Names)} or all."),
        };
    }
}
