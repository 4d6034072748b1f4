using System.Text.Json;
using AttnDistill.Evaluation;
using Xunit;

namespace AttnDistill.Tests.Evaluation;

public class EvaluationMetricsTests
{
    [Fact]
    public void Serializes_to_the_metrics_json_shape_and_back()
    {
        var sweep = new[] { new LinearProbeHeadResult(0.1, 0.4, 60.5, 85.0), new LinearProbeHeadResult(0.3, 1.2, 62.25, 86.0) };
        var metrics = new EvaluationMetrics
        {
            Knn = new[] { new KnnResult(20, 71.3, 90.2), new KnnResult(200, 69.0, 91.0) },
            Linear = LinearProbeResult.FromSweep(sweep),
        };
        string json = metrics.ToJson();
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(20, root.GetProperty("knn")[0].GetProperty("k").GetInt32());
        Assert.Equal(71.3, root.GetProperty("knn")[0].GetProperty("top1").GetDouble());
        Assert.Equal(90.2, root.GetProperty("knn")[0].GetProperty("top5").GetDouble());
        Assert.Equal(62.25, root.GetProperty("linear").GetProperty("best").GetProperty("top1").GetDouble());
        Assert.Equal(0.3, root.GetProperty("linear").GetProperty("best").GetProperty("base_lr").GetDouble());
        Assert.Equal(2, root.GetProperty("linear").GetProperty("sweep").GetArrayLength());
        Assert.False(root.TryGetProperty("finetune", out _));

        var back = EvaluationMetrics.FromJson(json);
        Assert.Equal(metrics.Knn, back.Knn);
        Assert.Equal(metrics.Linear!.Best, back.Linear!.Best);
        Assert.Equal(sweep, back.Linear.Sweep);
    }

    [Fact]
    public void Save_writes_metrics_json_in_the_out_dir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "attndistill-metrics-" + Guid.NewGuid().ToString("N"));
        try
        {
            string path = new EvaluationMetrics { Knn = new[] { new KnnResult(10, 50, 75) } }.Save(dir);
            Assert.Equal(Path.Combine(dir, "metrics.json"), path);
            Assert.Equal(50, EvaluationMetrics.FromJson(File.ReadAllText(path)).Knn![0].Top1);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
