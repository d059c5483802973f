using RLMServing.Bench;
using RLMServing.Bench.Grading;
using Xunit;

namespace RLMServing.Tests.Bench;

/// <summary>The exact-match rules of --evaluate, on answers as models write them.</summary>
public class GradingTests
{
    private static AnswerGrade Grade(string dataset, string text, string reference) => AnswerGraders.Get(dataset).Grade(text, reference)!;

    [Theory]
    [InlineData("The answer is 42.", "42", true)]
    [InlineData("Janet sells 16 - 3 - 4 = 9 duck eggs a day, making 9 * 2 = $18 every day.\n#### 18", "18", true)]
    [InlineData("She makes $1,234.50 in total.", "1234.5", true)]
    [InlineData("So the total is 1,000,000 dollars", "1000000", true)]
    [InlineData("The temperature drops to -5 degrees.", "-5", true)]
    [InlineData("The temperature drops to \u22125 degrees.", "-5", true)]
    [InlineData("He needs 18.00 dollars.", "18", true)]
    [InlineData("Each costs 0.75, so 4 cost 3", "3", true)]
    [InlineData("We have 3 bags with 12 apples each, so there are **36 apples**.", "36", true)]
    [InlineData("The final answer is $\\boxed{70}$", "70", true)]
    [InlineData("Answer: 25%", "25", true)]
    [InlineData("It takes 5 hours. I hope this helps with step 2", "2", true)]   // the last number, as the study graded
    [InlineData("The answer is 41.", "41", true)]
    [InlineData("1, 2, 3", "3", true)]
    public void Gsm8kTakesTheLastNumber(string text, string extracted, bool found)
    {
        Assert.Equal(extracted, AnswerGraders.Get("gsm8k").Extract(text));
        Assert.Equal(found, extracted is not null);
    }

    [Theory]
    [InlineData("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72", "72")]
    [InlineData("... so the loss is 1,250 dollars.\n#### -1,250", "-1250")]
    [InlineData("#### 5.50", "5.5")]
    [InlineData("72", "72")]   // a custom row's bare number
    public void Gsm8kReadsTheReferenceAfterTheMarks(string reference, string expected) =>
        Assert.Equal(expected, AnswerGraders.Get("gsm8k").Reference(reference));

    [Theory]
    [InlineData("Adding them up: 48 + 24 = 72. The answer is 72.", "#### 72", true)]
    [InlineData("She has $1,080 left.", "#### 1080", true)]
    [InlineData("She has 1080.0 dollars left.", "#### 1,080", true)]
    [InlineData("The answer is 71.", "#### 72", false)]
    [InlineData("The answer is -72.", "#### 72", false)]
    [InlineData("I cannot tell.", "#### 72", false)]
    [InlineData("72 apples, 73 pears", "#### 72", false)]
    public void Gsm8kComparesNumerically(string text, string reference, bool correct)
    {
        var g = Grade("gsm8k", text, reference);
        Assert.Equal(correct, g.Correct);
        if (text == "I cannot tell.") Assert.Null(g.Extracted);
    }

    [Fact]
    public void AReferenceWithoutAnAnswerIsNotGraded() =>
        Assert.Null(AnswerGraders.Get("gsm8k").Grade("42", "#### no idea"));

    [Theory]
    [InlineData("So $x = \\boxed{\\frac{14}{3}}$.", "\\frac{14}{3}", true)]
    [InlineData("\\boxed{\\dfrac{14}{3}}", "\\frac{14}{3}", true)]
    [InlineData("\\boxed{\\frac{14}{3}}", "\\frac{28}{6}", true)]           // equal integer fractions
    [InlineData("\\boxed{0.5}", "\\frac12", true)]
    [InlineData("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)", true)]
    [InlineData("\\boxed{90^\\circ}", "90", true)]
    [InlineData("\\boxed{x = 5}", "5", true)]
    [InlineData("\\boxed{\\text{(C)}}", "\\text{(C)}", true)]
    [InlineData("The answer is \\boxed{10\\%}.", "10", true)]
    [InlineData("first \\boxed{3} then \\boxed{4}", "4", true)]
    [InlineData("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", false)]                // no symbolic algebra
    [InlineData("The answer is 5.", "5", false)]                          // not boxed: nothing extracted
    [InlineData("\\boxed{1,000}", "1000", true)]
    public void Math500MatchesTheNormalisedBox(string text, string reference, bool correct) =>
        Assert.Equal(correct, Grade("math500", text, reference).Correct);

    [Fact]
    public void Math500ReadsABoxedSolutionAsItsReference() =>
        Assert.Equal("\\frac{1}{2}", AnswerGraders.Get("math500").Reference("We get $\\boxed{\\frac{1}{2}}$."));

    [Theory]
    [InlineData("Thus the answer is \\boxed{033}.", "33", true)]
    [InlineData("The answer is 204", "204", true)]
    [InlineData("m + n = 1000, so ... \\boxed{25}", "25", true)]
    [InlineData("The answer is 1000", "0", false)]       // out of range: nothing extracted
    [InlineData("The answer is 12.5", "12", false)]
    [InlineData("\\boxed{25}", "025", true)]
    public void Aime24IsAnIntegerFrom0To999(string text, string reference, bool correct) =>
        Assert.Equal(correct, Grade("aime24", text, reference).Correct);

    [Theory]
    [InlineData("After comparing the options, the answer is (B).", "B", "B")]
    [InlineData("Answer: C", "C", "C")]
    [InlineData("**Answer: D**", "D", "D")]
    [InlineData("The correct choice is \\boxed{A}", "A", "A")]
    [InlineData("\\boxed{\\text{(C)}}", "(C)", "C")]
    [InlineData("Option (A) is wrong and (D) is right", "D", "D")]
    [InlineData("B", "B", "B")]
    [InlineData("A common mistake. The answer is C", "A", "C")]
    [InlineData("I am not sure.", "A", null)]
    public void GpqaFindsTheChoiceLetter(string text, string reference, string? extracted)
    {
        var g = Grade("gpqa", text, reference);
        Assert.Equal(extracted, g.Extracted);
        Assert.Equal(extracted == reference.Trim('(', ')'), g.Correct);
    }

    [Fact]
    public void TheRegistryKnowsEveryPresetAndRefusesOthers()
    {
        Assert.Equal(["gsm8k", "math500", "aime24", "gpqa"], AnswerGraders.Names);
        Assert.All(AnswerGraders.Names, n => Assert.Equal(n, AnswerGraders.Find(n.ToUpperInvariant())!.Dataset));
        var e = Assert.Throws<UserInputException>(() => AnswerGraders.Get("mmlu"));
        Assert.Contains("--grader", e.Message);
    }

    [Fact]
    public void OnlyTheEndOfTheReasoningIsKept()
    {
        var o = new RequestOutcome(new BenchPrompt(0, "q", 1, 1), 1, 0);
        for (int i = 0; i < 10_000; i++) o.KeepReasoning($"step {i}. ");
        o.KeepReasoning("So the answer is 7");
        Assert.Equal(RequestOutcome.ReasoningTailChars, o.ReasoningTail.Length);
        Assert.EndsWith("So the answer is 7", o.ReasoningTail);
    }
}
