namespace Bcmr.Engine; public static class EngineInfo { public const string Version = "0.2.0"; }
