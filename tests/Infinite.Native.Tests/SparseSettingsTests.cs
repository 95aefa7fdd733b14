namespace Infinite.Native.Tests;

public sealed class SparseSettingsTests
{
    [Fact]
    public void A_global_quantile_makes_the_lowest_gates_streaming_across_layers()
    {
        double[,] gates = { { 0.9, 0.1, 0.8, 0.2 }, { 0.05, 0.15, 0.95, 0.85 } };
        HeadRoles roles = HeadRoles.FromGateValues(gates, sparsity: 0.5);
        Assert.Equal(4, roles.StreamingCount);
        Assert.Equal(HeadRole.Streaming, roles[0, 1]);
        Assert.Equal(HeadRole.Streaming, roles[0, 3]);
        Assert.Equal(HeadRole.Streaming, roles[1, 0]);
        Assert.Equal(HeadRole.Streaming, roles[1, 1]);
        Assert.Equal(HeadRole.Retrieval, roles[1, 2]);
        Assert.Equal([0, 1, 0, 1], roles.StreamingFlags(0)!);
        Assert.Null(HeadRoles.Dense(2, 4).StreamingFlags(1));
    }

    [Fact]
    public void A_gate_file_is_read_and_its_errors_name_line_and_column()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "# layer per line\n0.9\t0.1\n0.3\t0.7\n");
            HeadRoles roles = HeadRoles.LoadGateFile(path, 0.25);
            Assert.Equal((2, 2), (roles.Layers, roles.KvHeads));
            Assert.Equal(HeadRole.Streaming, roles[0, 1]);
            Assert.Equal(1, roles.StreamingCount);

            File.WriteAllText(path, "0.9 0.1\n0.3 x\n");
            var e = Assert.Throws<FormatException>(() => HeadRoles.LoadGateFile(path, 0.5));
            Assert.Contains(":2: column 2", e.Message, StringComparison.Ordinal);

            File.WriteAllText(path, "0.9 0.1\n0.3\n");
            e = Assert.Throws<FormatException>(() => HeadRoles.LoadGateFile(path, 0.5));
            Assert.Contains(":2: 1 heads, but the first layer has 2", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Bad_sparse_settings_are_refused_with_the_setting_named()
    {
        new SparseAttentionOptions().Validate(pageSize: 64);
        var e = Assert.Throws<ArgumentException>(() => new SparseAttentionOptions { LocalTokens = 100 }.Validate(64));
        Assert.Contains("LocalTokens (100) must be a positive multiple of the page size (64)", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => new SparseAttentionOptions { TokenBudget = 32 }.Validate(64));
        Assert.Contains("TokenBudget (32) is smaller than one page (64 tokens)", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new SparseAttentionOptions { ReuseInterval = 0 }.Validate(64));
        Assert.Throws<ArgumentOutOfRangeException>(() => HeadRoles.FromGateValues(new double[1, 1], 1.5));
    }

    [Fact]
    public void Reuse_returns_the_stored_selection_until_its_step()
    {
        var reuse = new ReusableSelection(interval: 4);
        int computed = 0;
        PageSelection Compute()
        {
            computed++;
            return new PageSelection(1, 1, false, [0, 1], [computed]);
        }

        var seen = new List<int>();
        for (long step = 0; step < 10; step++)
        {
            seen.Add(reuse.Get(request: 7, layer: 0, step, Compute).Entries(0, 0)[0]);
        }
        Assert.Equal([1, 1, 1, 1, 2, 2, 2, 2, 3, 3], seen);
        Assert.Equal(3, reuse.Computed);

        reuse.Get(7, layer: 1, step: 9, Compute); // another layer has its own selection
        Assert.Equal(4, computed);
        reuse.Forget(7);
        reuse.Get(7, 0, 9, Compute);
        Assert.Equal(5, computed);
    }
}
