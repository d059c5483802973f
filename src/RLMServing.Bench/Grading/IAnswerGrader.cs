namespace RLMServing.Bench.Grading;

/// <summary>What grading found in one answer: the final answer in the grader's normal form (null: none found) and the verdict.</summary>
public sealed record AnswerGrade(string? Extracted, bool Correct);

/// <summary>
/// One dataset's exact-match rule: how the final answer is found in a model's text and in the dataset's reference,
/// and when two are the same. Rules are deterministic string work, no model in the loop (docs/bench.md, "Grading").
/// </summary>
public interface IAnswerGrader
{
    /// <summary>The dataset the rule is for (gsm8k, math500, aime24, gpqa): the registry's key.</summary>
    string Dataset { get; }

    /// <summary>The reference's final answer in normal form, or null when the reference holds none this rule can read.</summary>
    string? Reference(string reference);

    /// <summary>The final answer in a model's text, in normal form, or null when the text has none.</summary>
    string? Extract(string text);

    /// <summary>Whether two normal forms are the same answer.</summary>
    bool Same(string extracted, string reference);
}

/// <summary>The graders by dataset name, for <c>rlms bench --evaluate</c> and anything else that grades answers.</summary>
public static class AnswerGraders
{
    public static IReadOnlyList<IAnswerGrader> All { get; } = [new Gsm8kGrader(), new Math500Grader(), new Aime24Grader(), new GpqaGrader()];

    public static IReadOnlyList<string> Names { get; } = All.Select(g => g.Dataset).ToList();

    public static IAnswerGrader? Find(string dataset) => All.FirstOrDefault(g => string.Equals(g.Dataset, dataset, StringComparison.OrdinalIgnoreCase));

    public static IAnswerGrader Get(string dataset) =>
        Find(dataset) ?? throw new UserInputException($"--grader: no grading rule for '{dataset}'; known: {string.Join(", ", Names)}");

    /// <summary>
    /// Grades <paramref name="text"/> against <paramref name="reference"/>; null when the reference holds no answer the
    /// rule can read (the request is not graded). No answer found in the text is graded wrong.
    /// </summary>
    public static AnswerGrade? Grade(this IAnswerGrader grader, string text, string reference)
    {
        if (grader.Reference(reference) is not { } expected) return null;
        var extracted = grader.Extract(text);
        return new AnswerGrade(extracted, extracted is not null && grader.Same(extracted, expected));
    }
}
