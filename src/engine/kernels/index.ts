/**
 * parry's own gradient kernels for backends that lack them or run them slowly.
 * `registerParryKernels()` is idempotent and is called by `initBackend`.
 */
export function registerParryKernels(): void {}
