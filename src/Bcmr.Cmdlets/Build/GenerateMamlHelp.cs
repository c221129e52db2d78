#nullable enable
// Compiled and run by MSBuild (RoslynCodeTaskFactory, see Bcmr.Cmdlets.csproj), not part of the module.
// Turns platyPS-style markdown pages (docs/help/<Verb-Noun>.md) into one MAML file, the format Get-Help reads for
// compiled cmdlets. Only the subset of platyPS's schema 2.0 that our pages use is understood; anything unexpected
// fails the build with the file and line, so a broken page never ships as silently missing help.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class GenerateMamlHelp : Task
{
    [Required] public ITaskItem[] Markdown { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string OutputFile { get; set; } = "";

    public override bool Execute()
    {
        var pages = new List<HelpPage>();
        foreach (var item in Markdown.OrderBy(i => i.ItemSpec, StringComparer.Ordinal))
        {
            try { pages.Add(HelpPage.Parse(File.ReadAllLines(item.ItemSpec))); }
            catch (FormatException e)
            {
                Log.LogError(null, "BCMRHELP", null, item.ItemSpec, 0, 0, 0, 0, e.Message);
            }
        }
        if (Log.HasLoggedErrors) return false;
        if (pages.Count == 0) { Log.LogError("no help pages given"); return false; }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(OutputFile))!);
        var settings = new XmlWriterSettings { Indent = true, Encoding = new UTF8Encoding(false) };
        using (var writer = XmlWriter.Create(OutputFile, settings)) Maml.Document(pages).Save(writer);
        Log.LogMessage(MessageImportance.Normal, $"help: {pages.Count} cmdlet pages -> {OutputFile}");
        return true;
    }
}

public sealed class HelpParameter
{
    public string Name = "";
    public List<string> Description = new();
    public Dictionary<string, string> Fields = new(StringComparer.OrdinalIgnoreCase);

    public string Field(string key, string fallback = "") => Fields.TryGetValue(key, out var v) && v.Length > 0 ? v : fallback;
    public string Type => Field("Type", "Object");
    public bool IsSwitch => Type == "SwitchParameter";
    public IEnumerable<string> Sets => Field("Parameter Sets", "(All)").Split(',').Select(s => s.Trim());
}

public sealed class HelpExample
{
    public string Title = "";
    public StringBuilder Code = new();
    public List<string> Remarks = new();
}

public sealed class HelpPage
{
    public string Name = "";
    public List<string> Synopsis = new();
    public List<string> Description = new();
    public List<HelpExample> Examples = new();
    public List<HelpParameter> Parameters = new();
    public List<(string Type, List<string> Text)> Inputs = new();
    public List<(string Type, List<string> Text)> Outputs = new();
    public List<string> Notes = new();
    public List<(string Text, string Uri)> Links = new();
    /// <summary>The parameter sets the SYNTAX section names (its "### Name" headings), in order.</summary>
    public List<string> SyntaxSets = new();

    /// <summary>Paragraphs: runs of non-blank lines joined with spaces (markdown's own rule), list items kept apart.</summary>
    private static void AddLine(List<string> paragraphs, ref bool open, string line)
    {
        if (line.Trim().Length == 0) { open = false; return; }
        bool listItem = line.TrimStart().StartsWith("- ", StringComparison.Ordinal);
        if (open && !listItem) paragraphs[paragraphs.Count - 1] += " " + line.Trim();
        else paragraphs.Add(line.Trim());
        open = true;
    }

    public static HelpPage Parse(string[] lines)
    {
        var page = new HelpPage();
        int i = 0;
        if (lines.Length > 0 && lines[0].Trim() == "---")
        {
            i = 1;
            while (i < lines.Length && lines[i].Trim() != "---") i++;
            i++;
        }
        string section = "";
        HelpExample? example = null;
        HelpParameter? parameter = null;
        List<string>? typeText = null;
        bool open = false;
        for (; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                var lang = line.Substring(3).Trim();
                var block = new List<string>();
                int start = i;
                for (i++; i < lines.Length && !lines[i].StartsWith("```", StringComparison.Ordinal); i++) block.Add(lines[i]);
                if (i >= lines.Length) throw new FormatException($"line {start + 1}: code block never closed");
                if (section == "EXAMPLES" && example is not null)
                {
                    if (example.Code.Length > 0) example.Code.Append('\n');
                    example.Code.Append(string.Join("\n", block));
                }
                else if (section == "PARAMETERS" && parameter is not null && lang == "yaml")
                {
                    foreach (var y in block)
                    {
                        int colon = y.IndexOf(':');
                        if (colon > 0) parameter.Fields[y.Substring(0, colon).Trim()] = y.Substring(colon + 1).Trim();
                    }
                }
                open = false;
                continue;
            }
            if (line.StartsWith("# ", StringComparison.Ordinal)) { page.Name = line.Substring(2).Trim(); continue; }
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                section = line.Substring(3).Trim().ToUpperInvariant();
                example = null; parameter = null; typeText = null; open = false;
                continue;
            }
            if (line.StartsWith("### ", StringComparison.Ordinal))
            {
                var title = line.Substring(4).Trim();
                open = false;
                switch (section)
                {
                    case "SYNTAX": page.SyntaxSets.Add(title.Replace("(Default)", "").Trim()); break;
                    case "EXAMPLES": example = new HelpExample { Title = title }; page.Examples.Add(example); break;
                    case "PARAMETERS":
                        parameter = null;
                        if (title.StartsWith("-", StringComparison.Ordinal))
                        {
                            parameter = new HelpParameter { Name = title.Substring(1) };
                            page.Parameters.Add(parameter);
                        }
                        break;
                    case "INPUTS": typeText = new List<string>(); page.Inputs.Add((title, typeText)); break;
                    case "OUTPUTS": typeText = new List<string>(); page.Outputs.Add((title, typeText)); break;
                }
                continue;
            }
            switch (section)
            {
                case "SYNOPSIS": AddLine(page.Synopsis, ref open, line); break;
                case "DESCRIPTION": AddLine(page.Description, ref open, line); break;
                case "EXAMPLES": if (example is not null) AddLine(example.Remarks, ref open, line); break;
                case "PARAMETERS": if (parameter is not null) AddLine(parameter.Description, ref open, line); break;
                case "INPUTS": case "OUTPUTS": if (typeText is not null) AddLine(typeText, ref open, line); break;
                case "NOTES": AddLine(page.Notes, ref open, line); break;
                case "RELATED LINKS":
                    var t = line.Trim();
                    if (t.StartsWith("[", StringComparison.Ordinal) && t.Contains("]("))
                    {
                        int close = t.IndexOf("](", StringComparison.Ordinal);
                        page.Links.Add((t.Substring(1, close - 1), t.Substring(close + 2).TrimEnd(')')));
                    }
                    break;
            }
        }
        if (page.Name.Split('-').Length != 2) throw new FormatException($"no '# Verb-Noun' title (got '{page.Name}')");
        if (page.Synopsis.Count == 0) throw new FormatException($"{page.Name}: no SYNOPSIS");
        if (page.Description.Count == 0) throw new FormatException($"{page.Name}: no DESCRIPTION");
        if (page.Examples.Count < 2) throw new FormatException($"{page.Name}: fewer than two EXAMPLES");
        foreach (var e in page.Examples)
            if (e.Code.Length == 0) throw new FormatException($"{page.Name}: example '{e.Title}' has no code block");
        foreach (var p in page.Parameters)
        {
            if (p.Description.Count == 0) throw new FormatException($"{page.Name}: parameter -{p.Name} has no description");
            if (!p.Fields.ContainsKey("Type")) throw new FormatException($"{page.Name}: parameter -{p.Name} has no yaml block with a Type");
        }
        if (page.Inputs.Count == 0 || page.Outputs.Count == 0) throw new FormatException($"{page.Name}: INPUTS and OUTPUTS are required");
        return page;
    }
}

public static class Maml
{
    private static readonly XNamespace Msh = "http://msh";
    private static readonly XNamespace M = "http://schemas.microsoft.com/maml/2004/10";
    private static readonly XNamespace C = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private static readonly XNamespace D = "http://schemas.microsoft.com/maml/dev/2004/10";

    public static XDocument Document(IEnumerable<HelpPage> pages) => new(new XDeclaration("1.0", "utf-8", null),
        new XElement(Msh + "helpItems", new XAttribute("schema", "maml"), pages.Select(Command)));

    private static XElement Paras(XName name, IEnumerable<string> paragraphs) =>
        new(name, paragraphs.Select(p => new XElement(M + "para", p)));

    private static XElement Command(HelpPage p)
    {
        var verbNoun = p.Name.Split('-');
        // One syntax line per parameter set the SYNTAX section names (a set may have no parameter of its own, as
        // Start-BcmrServe's Stdio set); pages without set headings get the sets their parameters name.
        var sets = p.SyntaxSets.Count > 0 ? p.SyntaxSets.ToList()
            : p.Parameters.SelectMany(x => x.Sets).Where(s => s != "(All)").Select(s => s.Replace("(Default)", "").Trim())
                .Distinct(StringComparer.Ordinal).ToList();
        if (sets.Count == 0 || p.SyntaxSets.Count == 1 && p.Parameters.All(x => x.Sets.All(s => s == "(All)"))) sets = new List<string> { "(All)" };
        return new XElement(C + "command",
            new XAttribute(XNamespace.Xmlns + "maml", M), new XAttribute(XNamespace.Xmlns + "command", C),
            new XAttribute(XNamespace.Xmlns + "dev", D),
            new XElement(C + "details",
                new XElement(C + "name", p.Name),
                new XElement(C + "verb", verbNoun[0]),
                new XElement(C + "noun", verbNoun[1]),
                Paras(M + "description", p.Synopsis)),
            Paras(M + "description", p.Description),
            new XElement(C + "syntax", sets.Select(set => new XElement(C + "syntaxItem",
                new XElement(M + "name", p.Name),
                p.Parameters.Where(x => x.Sets.Any(s => s == "(All)" || s.Replace("(Default)", "").Trim() == set))
                    .OrderBy(x => int.TryParse(x.Field("Position"), out var n) ? n : int.MaxValue)
                    .Select(x => Parameter(x, inSyntax: true))))),
            new XElement(C + "parameters", p.Parameters.Select(x => Parameter(x, inSyntax: false))),
            new XElement(C + "inputTypes", p.Inputs.Select(t => new XElement(C + "inputType",
                new XElement(D + "type", new XElement(M + "name", t.Type)), Paras(M + "description", t.Text)))),
            new XElement(C + "returnValues", p.Outputs.Select(t => new XElement(C + "returnValue",
                new XElement(D + "type", new XElement(M + "name", t.Type)), Paras(M + "description", t.Text)))),
            new XElement(M + "alertSet", new XElement(M + "alert", p.Notes.Select(n => new XElement(M + "para", n)))),
            new XElement(C + "examples", p.Examples.Select(e => new XElement(C + "example",
                new XElement(M + "title", $"-------------------------- {e.Title} --------------------------"),
                new XElement(D + "code", e.Code.ToString()),
                Paras(D + "remarks", e.Remarks)))),
            // Only an absolute web address is a uri: Get-Help -Online opens the first one, and a page of this folder
            // (Start-BcmrServe.md) is no address; without one, -Online says in PowerShell's words that there is none.
            new XElement(C + "relatedLinks", p.Links.Select(l => new XElement(M + "navigationLink",
                new XElement(M + "linkText", l.Text),
                new XElement(M + "uri", Uri.TryCreate(l.Uri, UriKind.Absolute, out var u) && (u.Scheme == "https" || u.Scheme == "http") ? l.Uri : "")))));
    }

    private static XElement Parameter(HelpParameter x, bool inSyntax)
    {
        var position = x.Field("Position", "Named");
        var pipeline = x.Field("Accept pipeline input", "False");
        var e = new XElement(C + "parameter",
            new XAttribute("required", x.Field("Required", "False").ToLowerInvariant()),
            new XAttribute("variableLength", x.Type.EndsWith("[]", StringComparison.Ordinal) ? "true" : "false"),
            new XAttribute("globbing", x.Field("Accept wildcard characters", "False").ToLowerInvariant()),
            new XAttribute("pipelineInput", pipeline),
            new XAttribute("position", position.Equals("Named", StringComparison.OrdinalIgnoreCase) ? "named" : position),
            new XAttribute("aliases", x.Field("Aliases", "none")),
            new XElement(M + "name", x.Name),
            Paras(M + "description", x.Description));
        if (!(inSyntax && x.IsSwitch))
            e.Add(new XElement(C + "parameterValue", new XAttribute("required", x.IsSwitch ? "false" : "true"),
                new XAttribute("variableLength", "false"), x.Type));
        e.Add(new XElement(D + "type", new XElement(M + "name", x.Type), new XElement(M + "uri")));
        e.Add(new XElement(D + "defaultValue", x.Field("Default value", x.IsSwitch ? "False" : "None")));
        return e;
    }
}
