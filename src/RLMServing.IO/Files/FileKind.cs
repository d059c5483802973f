namespace RLMServing.IO.Files;

/// <summary>What a path names on disk, as stat(2) sees it (symbolic links followed; a link to nothing is its own kind).</summary>
public enum FileKind
{
    Missing,
    Regular,
    Directory,
    Fifo,
    CharacterDevice,
    BlockDevice,
    Socket,
    DanglingLink,
    Other,
}
