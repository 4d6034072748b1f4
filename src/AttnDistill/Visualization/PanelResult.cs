namespace AttnDistill.Visualization;

/// <summary>What was written for one image: the PNG (when asked), the .npy files (when asked) and each student's KL to the teacher, in student order.</summary>
public sealed record PanelResult(string ImageName, string Group, string? PngPath, IReadOnlyList<string> NpyPaths, IReadOnlyList<double> KlToTeacher);
