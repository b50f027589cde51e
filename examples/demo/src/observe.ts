import { join } from 'node:path';
import {
  createDashboard,
  createFlowRecorder,
  type Dashboard,
  type DashboardDeadLetters,
  type DashboardJobs,
  type DashboardOptions,
  type DashboardReceipts,
  type FlowRecorder,
} from '@switchboard/dashboard';
import type { ServiceConfig } from './config.js';

/**
 * What a demo service records of its own traffic: a flow recorder on Switchboard's diagnostics
 * channels, kept in a SQLite file of its own too, so a restarted service shows its recent flows.
 * Created before anything else, so it sees everything the service does.
 */
export function startRecorder(service: string, config: ServiceConfig): FlowRecorder {
  return createFlowRecorder({ service, retention: { path: join(config.dataDir, `${service}-flows.db`) } });
}

/**
 * The dashboard a demo service serves under `/_switchboard/`: its own flows, dead letters and
 * receipts, joined with those of its peers (`SWITCHBOARD_DASHBOARD_PEERS`, comma-separated base
 * URLs of services whose dashboards it pulls from). `SWITCHBOARD_DASHBOARD_TOKEN` makes it answer
 * off loopback, to requests carrying the token.
 */
export function openDashboard(
  recorder: FlowRecorder,
  parts: {
    readonly deadLetters?: DashboardDeadLetters;
    readonly receipts?: DashboardReceipts;
    readonly jobs?: DashboardJobs;
    readonly broker?: DashboardOptions['broker'];
    readonly peers?: readonly string[];
  } = {},
): Dashboard {
  const token = process.env.SWITCHBOARD_DASHBOARD_TOKEN || undefined;
  const peers = [...(parts.peers ?? []), ...(process.env.SWITCHBOARD_DASHBOARD_PEERS ?? '').split(',')]
    .map((url) => url.trim())
    .filter((url) => url !== '')
    .map((url) => ({ url: `${url.replace(/\/+$/, '')}/_switchboard`, ...(token === undefined ? {} : { token }) }));
  return createDashboard({
    recorder,
    peers,
    ...(parts.deadLetters ? { deadLetters: parts.deadLetters } : {}),
    ...(parts.receipts ? { receipts: parts.receipts } : {}),
    ...(parts.jobs ? { jobs: parts.jobs } : {}),
    ...(parts.broker ? { broker: parts.broker } : {}),
    ...(token === undefined ? {} : { token }),
  });
}
