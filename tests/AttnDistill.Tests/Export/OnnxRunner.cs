using AttnDistill.Export;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

namespace AttnDistill.Tests.Export;

/// <summary>Runs an exported model in ONNX Runtime on a TorchSharp input; outputs come back as tensors by name.</summary>
sealed class OnnxRunner : IDisposable
{
    readonly InferenceSession _session;

    public OnnxRunner(byte[] model) => _session = new InferenceSession(model, Options());
    public OnnxRunner(string path) => _session = new InferenceSession(path, Options());

    /// <summary>Full graph optimization (what users get); one thread, no spinning: the test machine is shared.</summary>
    static SessionOptions Options()
    {
        var o = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        o.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return o;
    }

    public IReadOnlyList<string> OutputNames => _session.OutputNames;

    public Dictionary<string, Tensor> Run(Tensor image)
    {
        var x = image.detach().cpu().to(ScalarType.Float32).contiguous();
        float[] data = x.data<float>().ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(data, x.shape);
        using var run = new RunOptions();
        using var outputs = _session.Run(run, new[] { VitOnnxExporter.ImageInput }, new[] { input }, _session.OutputNames);
        var result = new Dictionary<string, Tensor>();
        for (int i = 0; i < outputs.Count; i++)
        {
            var shape = outputs[i].GetTensorTypeAndShape().Shape;
            result[_session.OutputNames[i]] = tensor(outputs[i].GetTensorDataAsSpan<float>().ToArray()).reshape(shape);
        }
        return result;
    }

    public void Dispose() => _session.Dispose();
}
