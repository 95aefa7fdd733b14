using Infinite.Cluster;
using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

/// <summary>The cost model against FLOPs and bytes computed by hand for Llama-2-7B on one A100-80GB.</summary>
public sealed class RooflineCostModelTests
{
    private static readonly ClusterLayout Layout = SimulationRunner.Layout(ModelShape.Llama2_7B, DeviceProfile.A100, gpus: 1);

    [Fact]
    public void Llama2_7B_shape_matches_its_published_size()
    {
        ModelShape m = ModelShape.Llama2_7B;
        // 4 x 4096^2 (q, k, v, o) + 3 x 4096 x 11008 (gate, up, down) per layer
        Assert.Equal(67_108_864L + 135_266_304L, m.LayerParameters);
        Assert.Equal(6_738_149_376L, m.Parameters); // 32 layers + embedding + head: the "6.74B" of the model card
        Assert.Equal(524_288, m.KvBytesPerToken(2)); // 2 (K, V) x 32 layers x 32 heads x 128 x 2 bytes
        Assert.Equal(327_680, ModelShape.Llama2_70B.KvBytesPerToken(2)); // GQA: 8 KV heads over 80 layers
    }

    [Fact]
    public void A_7B_decode_step_at_4K_costs_its_weight_and_KV_bytes_over_bandwidth()
    {
        var model = new RooflineCostModel(Layout);
        ModelShape m = ModelShape.Llama2_7B;
        // Weights read per step: 32 layers x 202,375,168 + head 32000 x 4096 = 6,607,077,376 params x 2 bytes.
        Assert.Equal(13_214_154_752.0, model.StreamedWeightBytes);
        // One token: 2 FLOPs per layer weight plus the head.
        Assert.Equal(2.0 * 6_476_005_376 + 2.0 * 131_072_000, model.GemmFlops(1, 1));
        // Attention of one query at position 4095: 4 x 32 layers x 32 heads x 128 x 4096 keys.
        Assert.Equal(2_147_483_648.0, m.AttentionFlops(4095, 1));

        var work = new StepWork(1)
        {
            Tokens = 1,
            LogitRows = 1,
            LocalAttentionFlops = m.AttentionFlops(4095, 1),
            LocalAttentionBytes = 4096 * m.KvBytesPerToken(2), // 2 GiB of K and V
        };
        StepCost cost = model.Price(work, 0);
        double bandwidth = 2039e9 * 0.8;
        Assert.Equal(13_214_154_752.0 / bandwidth, cost.GemmSeconds, 12); // 8.10 ms, bandwidth-bound
        Assert.Equal(2_147_483_648.0 / bandwidth, cost.LocalAttentionSeconds, 12); // 1.32 ms
        Assert.Equal(32 * 20e-6, cost.OverheadSeconds, 12);
        Assert.Equal(0, cost.AllReduceSeconds);
        Assert.Equal(0.0100570, cost.Total, 6); // 8.101 + 1.317 + 0.640 ms
        Assert.Equal(cost.Total, model.DecodeStepSeconds([4096]), 12);
        Assert.Equal(cost.Total, model.StepSeconds(new InstanceLoad(1, [4096], 0, 0)), 6);
    }

    [Fact]
    public void A_large_prefill_chunk_is_compute_bound_and_a_bigger_batch_is_cheaper_per_token()
    {
        var model = new RooflineCostModel(Layout);
        double chunk = model.GemmSeconds(2048, 1);
        Assert.Equal(model.GemmFlops(2048, 1) / (312e12 * 0.6), chunk, 12);
        Assert.True(model.DecodeStepSeconds([.. Enumerable.Repeat(1000L, 64)]) / 64 < model.DecodeStepSeconds([1000]) / 4);
    }

    [Fact]
    public void Tensor_parallel_instances_pay_all_reduces_and_cross_node_ones_pay_InfiniBand()
    {
        var node = new RooflineCostModel(Layout with { Gpus = 8, GpusPerInstance = 8 });
        var cluster = new RooflineCostModel(Layout with { Gpus = 32, GpusPerInstance = 32 });
        Assert.Equal(0, new RooflineCostModel(Layout).AllReduceSeconds(1));
        // 8 GPUs on NVLink: 2 x 32 layers x (ring 2*7/8 x 8 KiB / 300 GB/s + a ring's 2*7 hops x 3 us)
        double expected = 64 * (2.0 * 7 / 8 * 8192 / 300e9 + 14 * 3e-6);
        Assert.Equal(expected, node.AllReduceSeconds(1), 12);
        // 32 GPUs on 4 nodes: the node's ring plus a tree over the nodes on InfiniBand: each GPU's 1/8 share,
        // 2*3/4 of it over 25 GB/s, and 2 x log2(4) hops of 8 us.
        double across = 64 * (2.0 * 7 / 8 * 8192 / 300e9 + 14 * 3e-6 + 2.0 * 3 / 4 * 1024 / 25e9 + 4 * 8e-6);
        Assert.Equal(across, cluster.AllReduceSeconds(1), 12);
        Assert.Equal(4.74e-3, across, 5); // per decode step: latency-bound, 74 us per all-reduce
    }

    [Fact]
    public void A_GEMM_split_over_32_GPUs_takes_no_less_than_its_kernels_minimum_time()
    {
        var tp32 = new RooflineCostModel(Layout with { Gpus = 32, GpusPerInstance = 32 });
        // Weights per GPU: 13.2 GB / 32 = 413 MB, 0.25 ms at 1.63 TB/s; but 32 layers x 4 GEMM kernels x 5 us = 0.64 ms.
        Assert.True(13_214_154_752.0 / (32 * 2039e9 * 0.8) < 0.4e-3);
        Assert.Equal(32 * 4 * 5e-6, tp32.GemmSeconds(1, 1), 12);
        // One GPU streams the whole model: far above the floor, so the floor changes nothing there.
        Assert.Equal(13_214_154_752.0 / (2039e9 * 0.8), new RooflineCostModel(Layout).GemmSeconds(1, 1), 12);
    }

    [Fact]
    public void Remote_parts_run_in_parallel_but_their_bytes_queue_on_the_homes_link()
    {
        ClusterLayout four = Layout with { Gpus = 32 };
        var model = new RooflineCostModel(four);
        var work = new StepWork(four.Instances) { Tokens = 2048, LogitRows = 1 };
        // A 2048-token prefill chunk with parts on instances 9 and 17 (other nodes: InfiniBand) and 3 (NVLink).
        foreach (int j in new[] { 3, 9, 17 })
        {
            work.RemoteQueryTokens[j] = 2048;
            work.RemoteBytes[j] = 1e9;
        }
        StepCost cost = model.Price(work, 0);
        double attention = 1e9 / (2039e9 * 0.8);
        double perPart = 32 * 2048 * (8192 + 4.0 * 4096 + 4 * 32); // q out (bf16), o (f32) and lse back, all layers
        // Latency: the slowest part (InfiniBand); bytes: the two InfiniBand parts one after the other on the home's
        // NIC, beside the NVLink part on NVLink.
        double expected = attention + 32 * 2 * 8e-6 + Math.Max(2 * perPart / 25e9, perPart / 300e9);
        Assert.Equal(expected, cost.RemoteAttentionSeconds, 12);
    }

    [Fact]
    public void Remote_attention_overlaps_local_attention_and_pays_the_exchange()
    {
        ClusterLayout two = Layout with { Gpus = 16 };
        var model = new RooflineCostModel(two);
        var work = new StepWork(two.Instances) { Tokens = 1, LogitRows = 1, LocalAttentionBytes = 1e9 };
        double localOnly = model.Price(work, 0).Total;
        work.RemoteBytes[9] = 1e9; // instance 9 is on the other node: InfiniBand
        work.RemoteQueryTokens[9] = 1;
        StepCost cost = model.Price(work, 0);
        double exchange = model.ExchangeSeconds(1, two.Between(0, 9));
        Assert.Equal(32 * (2 * 8e-6 + 8192 / 25e9 + (4.0 * 4096 + 4 * 32) / 25e9), exchange, 12);
        Assert.Equal(cost.LocalAttentionSeconds + exchange, cost.RemoteAttentionSeconds, 12);
        Assert.Equal(localOnly + exchange, cost.Total, 9);
    }
}
