using System.Runtime.Intrinsics.X86;

namespace Bcmr.Engine.Platform;

/// <summary>Whether this CPU encrypts AES-GCM in hardware: AES rounds and carry-less multiplication (x86's AES-NI and
/// PCLMULQDQ, asked of cpuid directly because a Native AOT image built for a lower level reports intrinsics it was not
/// compiled for as absent; ARM's AES and PMULL). OpenSSL's AES-GCM runs several times faster with them, and several
/// times slower than ChaCha20 without.</summary>
public static class AesHardware
{
    public static bool Present { get; } = Detect();

    private static bool Detect()
    {
        if (X86Base.IsSupported)
        {
            var (_, _, ecx, _) = X86Base.CpuId(1, 0);
            const int Pclmulqdq = 1 << 1, AesNi = 1 << 25;
            return (ecx & (AesNi | Pclmulqdq)) == (AesNi | Pclmulqdq);
        }
        return System.Runtime.Intrinsics.Arm.Aes.IsSupported;
    }
}
