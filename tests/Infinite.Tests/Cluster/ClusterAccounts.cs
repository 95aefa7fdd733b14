using Infinite.Cluster;

namespace Infinite.Tests.Cluster;

/// <summary>Checks that every rManager's books balance and agree with the page tables the test holds.</summary>
internal static class ClusterAccounts
{
    public static void AssertBalanced(ClusterPageSpace space, IReadOnlyDictionary<long, List<int>>? tables = null)
    {
        int lent = 0, borrowed = 0;
        foreach (RManager r in space.RManagers)
        {
            Assert.Equal(r.TotalPages, r.Own + r.Lent + r.Free);
            Assert.True(r.Own >= 0 && r.Lent >= 0 && r.Borrowed >= 0, $"negative count on instance {r.Instance}");
            Assert.True(r.Lent <= r.MaxLendPages, $"instance {r.Instance} lent {r.Lent} over its cap {r.MaxLendPages}");
            lent += r.Lent;
            borrowed += r.Borrowed;
        }
        Assert.Equal(lent, borrowed);
        Assert.Equal(space.TotalPages, space.RManagers.Sum(r => r.Own + r.Lent + r.Free));
        Assert.Equal(space.UsedPages, space.RManagers.Sum(r => r.Own + r.Lent));
        Assert.Equal(space.FreePages, space.RManagers.Where(r => !r.IsFailed).Sum(r => r.Free));
        if (tables is null)
            return;
        var seen = new HashSet<int>();
        int held = 0;
        foreach ((long id, List<int> table) in tables)
        {
            int home = space.HomeOf(id);
            Assert.True(home >= 0, $"request {id} has no home");
            foreach (int page in table)
                Assert.True(seen.Add(page), $"page {page} is in two tables");
            for (int i = 0; i < space.Instances; i++)
                Assert.Equal(table.Count(p => p / space.PagesPerInstance == i), space.RManagers[i].BlocksOf(id));
            Assert.Equal(table.Count(p => p / space.PagesPerInstance != home), space.RManagers[home].BorrowedBy(id));
            Assert.True(space.RManagers[home].IsHome(id));
            held += table.Count;
        }
        Assert.Equal(held, space.UsedPages);
    }
}
