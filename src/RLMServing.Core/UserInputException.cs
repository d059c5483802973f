namespace RLMServing;

/// <summary>
/// A mistake in what the user gave us (a file, a key, a value). The CLI prints the message as one line and exits
/// with code 2; nothing else should catch it. The message names the file and key or line where there is one.
/// </summary>
public class UserInputException(string message, Exception? inner = null) : Exception(message, inner);
