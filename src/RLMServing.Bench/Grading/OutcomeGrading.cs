namespace RLMServing.Bench.Grading;

/// <summary>Grades a run's requests: every completed request whose prompt has a reference answer.</summary>
public static class OutcomeGrading
{
    /// <summary>
    /// The answer channel is graded; a request whose answer is empty (a budget cut inside its reasoning, or a server
    /// that streams everything as reasoning) is graded on the end of its reasoning instead, and says so
    /// (<see cref="RequestOutcome.GradedChannel"/>). Failed requests are not graded: they count as failed, not wrong.
    /// </summary>
    public static void Apply(IReadOnlyList<RequestOutcome> outcomes, IAnswerGrader grader)
    {
        foreach (var o in outcomes)
        {
            if (!o.IsCompleted || o.Prompt.ReferenceAnswer is not { } reference) continue;
            var answer = o.OutputText;
            bool fromReasoning = string.IsNullOrWhiteSpace(answer);
            if (grader.Grade(fromReasoning ? o.ReasoningTail : answer, reference) is not { } grade) continue;
            o.AnswerExtracted = grade.Extracted;
            o.Correct = grade.Correct;
            o.GradedChannel = fromReasoning ? "reasoning" : "answer";
        }
    }
}
