namespace Infinite.Native;

/// <summary>How a <see cref="Communicator"/> moves its messages (mirrors <c>inf_comm_kind</c>).</summary>
public enum CommKind
{
    /// <summary>Instances in one process; messages are copied through memory.</summary>
    InProcess = 0,

    /// <summary>One instance per process under mpirun, host memory (the libinfinite_mpi.so plug-in).</summary>
    Mpi = 1,

    /// <summary>GPUs, device memory (libnccl.so.2, bootstrapped over another communicator).</summary>
    Nccl = 2,
}
