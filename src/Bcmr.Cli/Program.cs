using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Bcmr.Engine;

namespace Bcmr.Cli
{
    internal static partial class Program
    {
        /// <summary>
        /// Words that look like options but are none of this command's, which the parser would otherwise take as
        /// paths: "--bogus" or an option of a newer bcmr (-P 4) must stop the command before anything is copied, not
        /// become a source that is missing while the real files are copied. Only after "--" may a path start with
        /// '-'; a lone "-" is a path.
        /// </summary>
        internal static List<string> UnknownOptions(ParseResult parse)
        {
            int doubleDash = -1;
            for (int i = 0; i < parse.Tokens.Count; i++)
                if (parse.Tokens[i].Type == System.CommandLine.Parsing.TokenType.DoubleDash) { doubleDash = i; break; }
            var unknown = new List<string>();
            foreach (var argument in parse.CommandResult.Children.OfType<System.CommandLine.Parsing.ArgumentResult>())
                foreach (var token in argument.Tokens)
                {
                    if (token.Value.Length < 2 || token.Value[0] != '-') continue;
                    int at = -1;
                    for (int i = 0; i < parse.Tokens.Count; i++)
                        if (ReferenceEquals(parse.Tokens[i], token)) { at = i; break; }
                    if (doubleDash < 0 || at < doubleDash) unknown.Add(token.Value);
                }
            return unknown;
        }

        /// <summary>bcmr's global --json: machine-readable JSON lines on stdout instead of human output.</summary>
        internal static readonly Option<bool> Json = new("--json")
        {
            Description = "Print JSON lines on stdout (progress, one line per file, a final result) instead of human output.",
            Recursive = true,
        };

        /// <summary>Set to 1: one line on stderr at the end of a command with what the .NET runtime did for it (its
        /// collections, the bytes it allocated, the time the program was paused for them). For profiling and bug reports;
        /// tests hold the client's allocation per file with it.</summary>
        internal const string RuntimeStatsVariable = "BCMR_RUNTIME_STATS";

        internal static string RuntimeStats() => string.Create(CultureInfo.InvariantCulture,
            $"bcmr: runtime: collections gen0 {GC.CollectionCount(0)}, gen1 {GC.CollectionCount(1)}, gen2 {GC.CollectionCount(2)}; " +
            $"{GC.GetTotalAllocatedBytes(precise: true)} bytes allocated; {GC.GetTotalPauseDuration().TotalMilliseconds:0} ms paused");

        public static int Main(string[] args)
        {
            // The engine's variables are read here, once, and the commands hand them in: the engine reads none itself
            // (BCMR_SSH and BCMR_REMOTE aside, still read by its ssh transport). First thing, because the I/O path
            // is fixed by the first file operation.
            var settings = EngineSettings.FromEnvironment(Environment.GetEnvironmentVariable);
            settings.ApplyProcessWide();
            if (args is ["--version"])
            {
                // The version, then which SIMD path runs, so that users and bug reports can tell.
                Console.WriteLine($"{BuildVersion.Text} ({SimdImage.Description()})");
                return 0;
            }
            // A plain command, not RootCommand: RootCommand's help and version options take their descriptions from
            // System.CommandLine's resources, and the first read of those costs ~1.1 ms of every start (a quarter of a
            // `bcmr serve`'s time from Main to its Welcome, which every remote copy waits for). They are added when
            // the arguments ask for them; a line that starts with a directive ([suggest], dotnet-suggest's shell
            // completion) gets RootCommand, which alone has directives.
            const string about = "bcmr: fast, integrity-checked copy and move of files and directory trees.\n" + ExitCodes.HelpText +
                "\nEnvironment: BCMR_PORTABLE_IO=1 uses the portable I/O path instead of Linux system calls; " +
                "BCMR_RUNTIME_STATS=1 ends each command with a line on stderr of the runtime's collections and allocations.";
            Command root;
            if (args is [['[', ..], ..]) root = new RootCommand(about);
            else
            {
                root = new Command("bcmr", about);
                bool help = args.Any(a => a is "--help" or "-h" or "-?" or "/h" or "/?");
                if (help) root.Add(new System.CommandLine.Help.HelpOption());
                if (help || args.Contains("--version")) root.Add(new VersionOption());
            }
            root.Add(Json);
            (string Name, Func<Command> Create)[] commands =
            [
                ("copy", () => CopyCommand.Create(move: false, settings)),
                ("move", () => CopyCommand.Create(move: true, settings)),
                ("remove", RemoveCommand.Create),
                ("check", CheckCommand.Create),
                ("sync", () => SyncCommand.Create(settings)),
                ("hash", HashCommand.Create),
                ("session", () => SessionCommand.Create(settings)),
                ("cas", () => CasCommand.Create(settings)),
                ("serve", () => ServeCommand.Create(settings)),
            ];
            // Only the command asked for is built: each is a tree of options and help texts, and every remote copy
            // waits for a `bcmr serve` to start. The root's help, and a word that names no command, get them all.
            var asked = args.FirstOrDefault(a => !a.StartsWith('-'));
            bool one = commands.Any(c => c.Name == asked);
            foreach (var (name, create) in commands)
                if (!one || name == asked) root.Add(create());

            var parse = root.Parse(CopyCommand.ExpandBareModeFlags(args));
            var unknown = UnknownOptions(parse);
            if (parse.Errors.Count > 0 || unknown.Count > 0)
            {
                foreach (var e in parse.Errors) Console.Error.WriteLine("bcmr: " + e.Message);
                foreach (var u in unknown) Console.Error.WriteLine($"bcmr: unknown option '{u}' (a path that starts with '-' goes after '--')");
                Console.Error.WriteLine("Try 'bcmr --help' or 'bcmr <command> --help'.");
                return ExitCodes.Usage;
            }

            // Ctrl-C and SIGTERM cancel the engine, which removes its temp files before we exit with 130.
            using var cts = new CancellationTokenSource();
            void Cancel(PosixSignalContext ctx) { ctx.Cancel = true; cts.Cancel(); }
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
            var config = new InvocationConfiguration { EnableDefaultExceptionHandler = true, ProcessTerminationTimeout = null };
            int exit = parse.InvokeAsync(config, cts.Token).GetAwaiter().GetResult();
            if (Environment.GetEnvironmentVariable(RuntimeStatsVariable) == "1") Console.Error.WriteLine(RuntimeStats());
            return exit;
        }
    }
}
