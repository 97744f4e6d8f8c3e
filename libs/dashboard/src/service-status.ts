/** One serving service as the dashboard shows it. */
export interface ServiceStatus {
  role: 'policy-sampler' | 'reference' | 'reward';
  address: string;
  /** grpc.health.v1 status, or UNREACHABLE when the check failed. */
  health: string;
  /** The sampler's loaded weights version (GetInfo); samplers only, when it answered. */
  weightsVersion?: number;
  /** Why the last check failed, if it did. */
  error?: string;
  checkedAt: string;
}
