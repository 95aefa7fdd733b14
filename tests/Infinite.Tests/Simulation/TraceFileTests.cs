using Infinite.Simulation;

namespace Infinite.Tests.Simulation;

public sealed class TraceFileTests
{
    [Fact]
    public void A_trace_round_trips_exactly()
    {
        IReadOnlyList<WorkloadRequest> trace = SyntheticWorkload.Generate(LengthMix.Long, 0.37, 50, seed: 3);
        var text = new StringWriter();
        TraceFile.Write(text, trace);
        Assert.StartsWith(TraceFile.Header + Environment.NewLine, text.ToString());
        IReadOnlyList<WorkloadRequest> back = TraceFile.Read(new StringReader(text.ToString()));
        Assert.Equal(trace, back);
    }

    [Fact]
    public void A_trace_file_round_trips_through_disk_and_skips_comments_and_blank_lines()
    {
        string path = Path.Combine(Path.GetTempPath(), $"trace-{Guid.NewGuid():N}.csv");
        try
        {
            File.WriteAllText(path, "# from a production log\n\narrival_seconds, prompt_tokens, output_tokens\n0,100,10\n# note\n1.5,2000000,1\n");
            IReadOnlyList<WorkloadRequest> trace = TraceFile.Read(path);
            Assert.Equal([new WorkloadRequest(0, 100, 10), new WorkloadRequest(1.5, 2_000_000, 1)], trace);
            TraceFile.Write(path, trace);
            Assert.Equal(trace, TraceFile.Read(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("0,1,1\n", 1, 1, "expected the header")]
    [InlineData("arrival_seconds,prompt_tokens,output_tokens\n0,1\n", 2, 3, "expected 3 fields")]
    [InlineData("arrival_seconds,prompt_tokens,output_tokens\n0,1,1,1\n", 2, 4, "expected 3 fields")]
    [InlineData("arrival_seconds,prompt_tokens,output_tokens\nsoon,1,1\n", 2, 1, "arrival_seconds must be a number")]
    [InlineData("arrival_seconds,prompt_tokens,output_tokens\n-1,1,1\n", 2, 1, "arrival_seconds must be a number")]
    [InlineData("arrival_seconds,prompt_tokens,output_tokens\n2,1,1\n1,1,1\n", 3, 1, "must not decrease")]
    [InlineData("arrival_seconds,prompt_tokens,output_tokens\n0,0,1\n", 2, 2, "prompt_tokens must be a whole number >= 1")]
    [InlineData("arrival_seconds,prompt_tokens,output_tokens\n0,1.5,1\n", 2, 2, "prompt_tokens")]
    [InlineData("arrival_seconds,prompt_tokens,output_tokens\n0,5,x\n", 2, 3, "output_tokens must be a whole number")]
    [InlineData("", 1, 1, "empty trace")]
    public void Malformed_lines_name_the_line_and_column(string text, int line, int column, string message)
    {
        var e = Assert.Throws<TraceFormatException>(() => TraceFile.Read(new StringReader(text), "t.csv"));
        Assert.Equal(line, e.Line);
        Assert.Equal(column, e.Column);
        Assert.Contains(message, e.Message);
        Assert.StartsWith($"t.csv:{line}:{column}: ", e.Message);
    }
}
