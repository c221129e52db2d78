using System.CommandLine;
using System.Runtime.InteropServices;

namespace Bcmr.Cli
{
    internal static partial class Program
    {
        /// <summary>bcmr's global --json: machine-readable JSON lines on stdout instead of human output.</summary>
        internal static readonly Option<bool> Json = new("--json")
        {
            Description = "Print JSON lines on stdout (progress, one line per file, a final result) instead of human output.",
            Recursive = true,
        };

        public static int Main(string[] args)
        {
            var root = new RootCommand(
                "bcmr: fast, integrity-checked copy and move of files and directory trees.\n" + ExitCodes.HelpText +
                "\nEnvironment: BCMR_PORTABLE_IO=1 uses the portable I/O path instead of Linux system calls.");
            root.Add(Json);
            root.Add(CopyCommand.Create(move: false));
            root.Add(CopyCommand.Create(move: true));
            root.Add(RemoveCommand.Create());
            root.Add(CheckCommand.Create());
            root.Add(HashCommand.Create());
            root.Add(SessionCommand.Create());
            root.Add(CasCommand.Create());
            root.Add(ServeCommand.Create());

            var parse = root.Parse(CopyCommand.ExpandBareModeFlags(args));
            if (parse.Errors.Count > 0)
            {
                foreach (var e in parse.Errors) Console.Error.WriteLine("bcmr: " + e.Message);
                Console.Error.WriteLine("Try 'bcmr --help' or 'bcmr <command> --help'.");
                return ExitCodes.Usage;
            }

            // Ctrl-C and SIGTERM cancel the engine, which removes its temp files before we exit with 130.
            using var cts = new CancellationTokenSource();
            void Cancel(PosixSignalContext ctx) { ctx.Cancel = true; cts.Cancel(); }
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
            var config = new InvocationConfiguration { EnableDefaultExceptionHandler = true, ProcessTerminationTimeout = null };
            return parse.InvokeAsync(config, cts.Token).GetAwaiter().GetResult();
        }
    }
}
