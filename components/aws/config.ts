/**
 * Reads a regional stack's config through the Pulumi runtime and validates it with the zod schema of
 * lib/stack-config/aws.ts: a bad stack file fails with the key path and the reason, before any
 * resource is declared.
 */
import * as pulumi from "@pulumi/pulumi";
import { instanceMemoryMiB, parseAwsStackConfig, type AwsStackConfig } from "../../lib/stack-config/aws";
import type { RegionalPlatformArgs } from "./regional-platform";

/** The validated config of the current stack (`pulumi.runtime.allConfig()`: every namespace, raw strings). */
export function loadAwsStackConfig(): AwsStackConfig {
  return parseAwsStackConfig(pulumi.runtime.allConfig());
}

/** RegionalPlatform's args from a validated config (memory from the instance type unless configured). */
export function regionalPlatformArgs(config: AwsStackConfig, stackName: string): RegionalPlatformArgs {
  const { backup, alarms, ...postgres } = config.postgres;
  return {
    residency: config.region,
    awsRegion: config.awsRegion,
    accountId: config.accountId,
    stackName,
    costCentre: config.costCentre,
    environment: config.environment,
    network: config.network,
    postgres: {
      instanceType: postgres.instanceType,
      // The schema refuses an unknown instance type without memoryMiB, so one of the two is set.
      memoryMiB: postgres.memoryMiB ?? (instanceMemoryMiB(postgres.instanceType) as number),
      dataVolumeGiB: postgres.dataVolumeGiB,
      dataVolumeIops: postgres.dataVolumeIops,
      dataVolumeThroughputMiBps: postgres.dataVolumeThroughputMiBps,
      maxConnections: postgres.maxConnections,
      imageNamePattern: postgres.imageNamePattern,
      backup,
      alarms,
    },
    pgbouncer: config.pgbouncer,
    redis: config.redis,
    tenants: config.tenants,
    contextKeys: config.contextKeys,
  };
}
