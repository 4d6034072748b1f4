namespace AttnDistill.Distillation;

/// <summary>Which loss trains the student.</summary>
public enum DistillationMethod
{
    /// <summary>Feature MSE + attention KL (lambda = 0 gives the feature-only baseline).</summary>
    AttnDistill,
    /// <summary>CompRess "1q": similarity distribution over a queue of teacher features.</summary>
    CompRess,
}
